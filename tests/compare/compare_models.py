"""Python models for the comparison and replay tests (importable through base_dir)."""

from __future__ import annotations

from typing import Any

import numpy as np

CALLS = {"rows": 0}


def threshold(row: dict[str, float]) -> dict[str, Any]:
    """A champion: probability rises with ``a``."""
    p = 1.0 / (1.0 + float(np.exp(-row["a"])))
    return {"prediction": int(p >= 0.5), "probabilities": [1.0 - p, p]}


def shifted(row: dict[str, float]) -> dict[str, Any]:
    """A challenger that leans towards the positive class."""
    p = 1.0 / (1.0 + float(np.exp(-(row["a"] + 0.7))))
    return {"prediction": int(p >= 0.5), "probabilities": [1.0 - p, p]}


def counted(row: dict[str, float]) -> int:
    CALLS["rows"] += 1
    return int(row["a"] > 0)


def fussy(row: dict[str, float]) -> int:
    """Fails on one kind of row: its batch-mates must still get scores."""
    if row["a"] == 13:
        raise ValueError("unlucky row")
    return int(row["a"] > 0)


def doubled(rows: Any) -> Any:
    """A regression model over the whole batch."""
    return (2.0 * rows[:, 0]).tolist()
