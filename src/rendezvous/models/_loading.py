"""What every adapter does while loading: check options, import lazily, name a version.

Each helper raises :class:`~rendezvous.errors.ModelLoadError` (or ``MissingDependency``)
with a message that names the model, so a deployment with ten models says which one failed.
"""

from __future__ import annotations

import hashlib
import importlib
import re
import sys
import threading
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ..config import Deployment, ModelConfig
from ..errors import MissingDependency, ModelLoadError
from ..messages import Prediction
from .base import ModelInfo

__all__ = [
    "check_options",
    "file_version",
    "import_attr",
    "make_info",
    "option_classes",
    "option_int",
    "require",
    "scalars",
    "source_file",
    "text_version",
    "where",
]

_IMPORT_STRING = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_sys_path_lock = threading.Lock()


def where(cfg: ModelConfig) -> str:
    return f"model '{cfg.name}' ({cfg.kind})"


def check_options(cfg: ModelConfig, allowed: Collection[str]) -> dict[str, Any]:
    """Refuse option keys the adapter does not know: a typo must not be silently ignored."""
    unknown = sorted(set(cfg.options) - set(allowed))
    if unknown:
        raise ModelLoadError(
            f"{where(cfg)}: unknown option(s) {', '.join(map(repr, unknown))}; "
            f"expected any of {sorted(allowed)}"
        )
    return dict(cfg.options)


def option_classes(cfg: ModelConfig) -> tuple[Any, ...] | None:
    classes = cfg.options.get("classes")
    if classes is None:
        return None
    if not isinstance(classes, list | tuple) or not classes:
        raise ModelLoadError(f"{where(cfg)}: options.classes must be a non-empty list of labels")
    return tuple(classes)


def option_int(cfg: ModelConfig, key: str, default: int, minimum: int = 0) -> int:
    value = cfg.options.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ModelLoadError(f"{where(cfg)}: options.{key} must be an integer >= {minimum}")
    return value


def require(module: str, package: str, extra: str, purpose: str) -> ModuleType:
    """Import an optional dependency, or say which ``pip install`` brings it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module.split(".")[0] == exc.name.split(".")[0]:
            raise MissingDependency(package, extra, purpose) from exc
        raise


def source_file(cfg: ModelConfig, deployment: Deployment) -> Path:
    # The deployment checked the file when it was parsed; it may have gone since.
    path = deployment.resolve(cfg.source or "")
    if not path.is_file():
        raise ModelLoadError(f"{where(cfg)}: file not found: {path}")
    return path


def file_version(path: Path) -> str:
    """The first 12 hex digits of the file's sha256: same bytes, same version."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:12]


def text_version(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


def import_attr(cfg: ModelConfig, deployment: Deployment) -> tuple[ModuleType, Any]:
    """Resolve ``package.module:attr.sub`` with the deployment's directory importable."""
    source = cfg.source or ""
    if not _IMPORT_STRING.match(source):
        raise ModelLoadError(
            f"{where(cfg)}: expected an import string 'package.module:attribute', got {source!r}"
        )
    module_name, _, attr_path = source.partition(":")
    base = str(deployment.base_dir.resolve())
    with _sys_path_lock:
        # Appended, not prepended: a file next to the deployment must not shadow the
        # standard library or the packages the server itself runs on.
        if base not in sys.path:
            sys.path.append(base)
    importlib.invalidate_caches()  # the module may have been written after the last import
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise ModelLoadError(
                f"{where(cfg)}: cannot import module '{module_name}' (not found next to the "
                f"deployment in {base} nor on sys.path)"
            ) from exc
        raise ModelLoadError(f"{where(cfg)}: importing '{module_name}' failed: {exc}") from exc
    except Exception as exc:
        raise ModelLoadError(
            f"{where(cfg)}: importing '{module_name}' failed: {type(exc).__name__}: {exc}"
        ) from exc
    obj: Any = module
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ModelLoadError(
                f"{where(cfg)}: module '{module_name}' has no attribute '{attr_path}'"
            ) from None
    return module, obj


def make_info(
    cfg: ModelConfig,
    deployment: Deployment,
    version: str,
    classes: Sequence[Any] | None = None,
    **extra: Any,
) -> ModelInfo:
    return ModelInfo(
        name=cfg.name,
        version=cfg.version or version,
        kind=str(cfg.kind),
        features=tuple(deployment.input_schema.names),
        classes=tuple(classes) if classes is not None else None,
        extra=extra,
    )


def scalars(values: Iterable[Any]) -> list[Prediction]:
    """Plain Python values: numpy scalars would break JSON encoding further down."""
    return [v.item() if isinstance(v, np.generic) else v for v in values]
