"""Rows from outside → the feature vector every model sees, or an error naming the field.

A row is either a list of numbers in schema order or an object keyed by feature name (which
may carry extra fields that enrichers use, such as a lookup key). Enrichers run on the
object form; the result must hold every schema feature as a number.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .config import InputSchema
from .enrich import Enricher, FunctionStep, LookupStep
from .errors import InputError

__all__ = ["RowParser"]


def _describe(value: Any) -> str:
    if isinstance(value, str):
        text = value if len(value) <= 20 else value[:20] + "…"
        return f'string "{text}"'
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, float):
        return f"{value} (not a finite number)"
    return type(value).__name__


class RowParser:
    """Validates rows for one deployment and applies its enrichers."""

    def __init__(
        self,
        schema: InputSchema,
        enrichers: Sequence[Enricher] = (),
        *,
        allowed: Sequence[str] = (),
    ) -> None:
        self.names = schema.names
        self.width = schema.width
        self.enrichers = list(enrichers)
        lookup_keys = {e.key for e in self.enrichers if isinstance(e, LookupStep)}
        # fields that are no feature but have a use: lookup keys, the split key
        self._known = set(self.names) | lookup_keys | set(allowed)
        # user functions may read any field, so only without them can extra keys be refused
        self._strict = not any(isinstance(e, FunctionStep) for e in self.enrichers)

    def parse(self, row: Any, loc: str) -> list[float]:
        """The feature vector for ``row``; ``loc`` prefixes field paths in errors."""
        if type(row) is list:
            if len(row) != self.width:
                raise InputError(f"expected {self.width} features, got {len(row)}", loc=loc)
            if not self.enrichers:
                for i, v in enumerate(row):
                    t = type(v)
                    # v - v is 0 for every finite number, nan for inf and nan
                    if (t is not float and t is not int) or v - v != 0:
                        raise InputError(f"expected a number, got {_describe(v)}", f"{loc}[{i}]")
                return row
            row = dict(zip(self.names, row, strict=True))
        elif not isinstance(row, dict):
            raise InputError(
                f"expected a list of {self.width} numbers or an object of features, "
                f"got {_describe(row)}",
                loc=loc,
            )
        if self._strict:
            unknown = [k for k in row if k not in self._known]
            if unknown:
                raise InputError(
                    f"unknown field(s) {unknown}; expected features {self.names}", loc=loc
                )
        for step in self.enrichers:
            try:
                row = step(row)
            except InputError as exc:
                raise InputError(exc.message, _join(loc, exc.loc)) from None
        out: list[float] = []
        for name in self.names:
            v = row.get(name, _MISSING)
            t = type(v)
            if (t is not float and t is not int) or v - v != 0:
                if v is _MISSING:
                    raise InputError("missing feature", f"{loc}.{name}")
                raise InputError(f"expected a number, got {_describe(v)}", f"{loc}.{name}")
            out.append(v)
        return out


_MISSING: Any = object()


def _join(loc: str, sub: str) -> str:
    return f"{loc}.{sub}" if sub else loc
