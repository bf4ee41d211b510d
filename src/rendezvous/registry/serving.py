"""Turn a registry version into a model an executor can serve.

The artifact's file type picks the adapter (``.joblib``/``.skops`` → scikit-learn,
``.pkl``/``.pickle`` → River, ``.onnx`` → ONNX Runtime), so a learner that retrains a River
model publishes a pickle and an sklearn learner a joblib file, whatever the deployment's
entry started from. The adapters' own loaders do the work, so a version is checked exactly as
a model file named in a deployment is (features, classes, a trial prediction).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

from ..config import Deployment, ModelConfig, ModelKind
from ..errors import ModelLoadError
from ..models import onnx, river, sklearn
from ..models.base import Model
from .base import Registry

__all__ = ["load_version"]


@dataclass(frozen=True, slots=True)
class _Adapter:
    kind: ModelKind
    load: Callable[[ModelConfig, Deployment], Model]
    options: Collection[str]


_SKLEARN = _Adapter(ModelKind.SKLEARN, sklearn.load_sklearn, sklearn.OPTIONS)
_RIVER = _Adapter(ModelKind.RIVER, river.load_river, river.OPTIONS - {"params"})
_ONNX = _Adapter(ModelKind.ONNX, onnx.load_onnx, onnx.OPTIONS)

_SUFFIXES: dict[str, _Adapter] = {
    ".joblib": _SKLEARN,
    ".skops": _SKLEARN,
    ".pkl": _RIVER,
    ".pickle": _RIVER,
    ".onnx": _ONNX,
}


def load_version(
    registry: Registry,
    model_name: str,
    version: str | int,
    cfg: ModelConfig,
    deployment: Deployment,
) -> Model:
    """Load ``version`` (a number, an alias or ``latest``) of ``model_name`` as ``cfg``'s model.

    The model serves under ``cfg.name`` and reports the registry version as its
    ``info.version``. Options of ``cfg`` that the artifact's adapter takes are kept
    (``classes``, ``probabilities``, …); ``params`` builds a River model from an import
    string and means nothing for a stored one. The artifact's sha256 is checked first.
    """
    number = registry.resolve(model_name, version)
    path = registry.load_artifact(model_name, number)
    adapter = _SUFFIXES.get(path.suffix.lower())
    if adapter is None:
        raise ModelLoadError(
            f"model '{cfg.name}': registry version {model_name}@{number} is {path.name}; "
            f"can serve {', '.join(sorted(_SUFFIXES))} files"
        )
    entry = cfg.model_copy(
        update={
            "kind": adapter.kind,
            "source": str(path),
            "version": number,
            "options": {k: v for k, v in cfg.options.items() if k in adapter.options},
        }
    )
    return adapter.load(entry, deployment)
