"""Enrichers: steps that prepare a row before the models see it.

A step takes a row (a dict of field → value) and returns the row to pass on. ``lookup`` adds
fields from a CSV or JSON table keyed by a request field; ``function`` calls user code.
What comes out of the last step is exactly what the models see and what the archive keeps.
"""

from __future__ import annotations

import csv
import importlib
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from .config import Deployment, EnricherConfig, FunctionEnricher, LookupEnricher
from .errors import ConfigError, InputError, Problem

__all__ = ["Enricher", "FunctionStep", "LookupStep", "build_enrichers", "import_object"]

Row = dict[str, Any]


class Enricher(Protocol):
    """A step: row in, row out. Raise :class:`~rendezvous.errors.InputError` to reject."""

    def __call__(self, row: Row) -> Row: ...


def import_object(spec: str, base_dir: Path | None = None) -> Any:
    """Import ``package.module:attr.sub`` (the deployment's directory is importable)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ImportError(f"expected 'package.module:attribute', got '{spec}'")
    if base_dir is not None and str(base_dir) not in sys.path:
        sys.path.insert(0, str(base_dir))
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _number(value: Any) -> Any:
    """Table cells from CSV are text: turn numbers into numbers, keep the rest as is."""
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            try:
                return float(value)
            except ValueError:
                return value
    return value


class LookupStep:
    """Add the fields of the table row whose ``key`` column equals the request's ``key``."""

    def __init__(self, cfg: LookupEnricher, path: Path) -> None:
        self.key = cfg.key
        self.path = path
        self.on_missing = cfg.on_missing
        self.defaults = dict(cfg.defaults)
        rows = self._read(path, cfg.key)
        self.fields = cfg.fields or sorted({k for r in rows.values() for k in r} - {cfg.key})
        self.table: dict[str, dict[str, Any]] = {
            key: {f: _number(r[f]) for f in self.fields if f in r} for key, r in rows.items()
        }

    def __repr__(self) -> str:
        return f"LookupStep({self.path.name}, key={self.key!r}, rows={len(self.table)})"

    @staticmethod
    def _read(path: Path, key: str) -> dict[str, Mapping[str, Any]]:
        if path.suffix.lower() == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict):  # {"key": {...fields}}
                return {str(k): {key: k, **v} for k, v in data.items()}
            records = data
        else:
            with path.open(newline="", encoding="utf-8") as fh:
                records = list(csv.DictReader(fh))
        out: dict[str, Mapping[str, Any]] = {}
        for i, rec in enumerate(records):
            if not isinstance(rec, dict) or key not in rec:
                raise ValueError(f"row {i} has no '{key}' column")
            out[str(rec[key])] = rec
        return out

    def __call__(self, row: Row) -> Row:
        if self.key not in row:
            raise InputError(f"missing (needed to look up {self.path.name})", loc=self.key)
        found = self.table.get(str(row[self.key]))
        if found is None:
            if self.on_missing == "error":
                raise InputError(
                    f"no row with {self.key}={row[self.key]!r} in {self.path.name}", loc=self.key
                )
            found = self.defaults
        return {**row, **found}


class FunctionStep:
    """Call ``fn(row) -> row``; its exceptions become input errors naming the step."""

    def __init__(self, source: str, fn: Callable[[Row], Row]) -> None:
        self.source = source
        self.fn = fn

    def __repr__(self) -> str:
        return f"FunctionStep({self.source})"

    def __call__(self, row: Row) -> Row:
        try:
            out = self.fn(row)
        except InputError:
            raise
        except Exception as exc:
            raise InputError(f"enricher {self.source} failed: {type(exc).__name__}: {exc}") from exc
        if not isinstance(out, dict):
            raise InputError(f"enricher {self.source} returned {type(out).__name__}, not a dict")
        return out


def _build(i: int, cfg: EnricherConfig, dep: Deployment) -> Enricher:
    if isinstance(cfg, LookupEnricher):
        return LookupStep(cfg, dep.resolve(cfg.table))
    assert isinstance(cfg, FunctionEnricher)
    fn = import_object(cfg.source, dep.base_dir)
    if not callable(fn):
        raise TypeError(f"{cfg.source} is not callable")
    return FunctionStep(cfg.source, fn)


def build_enrichers(dep: Deployment) -> list[Enricher]:
    """The deployment's steps, in order; problems are reported with their field path."""
    steps: list[Enricher] = []
    problems: list[Problem] = []
    for i, cfg in enumerate(dep.enrichers):
        try:
            steps.append(_build(i, cfg, dep))
        except Exception as exc:
            problems.append(Problem(f"enrichers[{i}]", f"{type(exc).__name__}: {exc}"))
    if problems:
        raise ConfigError(dep.name, problems)
    return steps
