"""Features and targets checked at the boundary, with errors that name the field.

A row is a sequence of finite numbers (a list, a tuple or a 1-D numpy array; booleans count
as 0/1, as numpy does); it comes out as a tuple of Python floats. Targets are finite numbers
for regressors and class labels (int, str, bool) for classifiers.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Hashable, Sequence
from typing import Any, Literal

import numpy as np

from ..errors import InputError

__all__ = ["Row", "Task", "check_row", "check_rows", "check_target"]

Row = tuple[float, ...]
Task = Literal["regression", "classification"]


def check_row(features: object, n_features: int | None, loc: str = "features") -> Row:
    """``features`` as a tuple of floats, or :class:`InputError` naming the bad element."""
    if isinstance(features, np.ndarray):
        if features.ndim != 1:
            raise InputError(f"expected a 1-D sequence of numbers, got shape {features.shape}", loc)
        features = features.tolist()
    if not isinstance(features, Sequence) or isinstance(features, str | bytes):
        raise InputError(f"expected a sequence of numbers, got {_describe(features)}", loc)
    if n_features is not None and len(features) != n_features:
        raise InputError(f"expected {n_features} numbers, got {len(features)}", loc)
    row: list[float] = []
    for i, value in enumerate(features):
        if not isinstance(value, numbers.Real):
            raise InputError(f"expected a number, got {_describe(value)}", f"{loc}[{i}]")
        number = float(value)
        if not math.isfinite(number):
            raise InputError(f"expected a finite number, got {number}", f"{loc}[{i}]")
        row.append(number)
    return tuple(row)


def check_rows(rows: object, n_features: int | None, loc: str = "rows") -> list[Row]:
    """Every row of a batch checked; the error names the row and the element."""
    if isinstance(rows, np.ndarray):
        if rows.ndim != 2:
            raise InputError(f"expected a 2-D array of numbers, got shape {rows.shape}", loc)
        rows = rows.tolist()
    if not isinstance(rows, Sequence) or isinstance(rows, str | bytes):
        raise InputError(f"expected a sequence of rows, got {_describe(rows)}", loc)
    return [check_row(row, n_features, f"{loc}[{i}]") for i, row in enumerate(rows)]


def check_target(target: object, task: Task, loc: str = "target") -> Any:
    """A regression target as a float, a class label as a hashable Python scalar."""
    if isinstance(target, np.generic):
        target = target.item()
    if task == "regression":
        if not isinstance(target, numbers.Real):
            raise InputError(f"expected a number, got {_describe(target)}", loc)
        number = float(target)
        if not math.isfinite(number):
            raise InputError(f"expected a finite number, got {number}", loc)
        return number
    if isinstance(target, float) and not math.isfinite(target):
        raise InputError(f"expected a class label, got {target}", loc)
    if not isinstance(target, int | str | float) or not isinstance(target, Hashable):
        raise InputError(f"expected a class label (int, str or bool), got {_describe(target)}", loc)
    return target


def _describe(value: object) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"
