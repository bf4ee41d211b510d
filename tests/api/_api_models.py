"""Python-kind models the API tests deploy (imported by the deployments' import strings)."""

from __future__ import annotations


def risk(row: dict[str, float]) -> str:
    """A business rule answering with a string label."""
    return "high" if row["amount"] > 1000 and row["age"] < 30 else "low"


def is_big(row: dict[str, float]) -> bool:
    return row["amount"] > 100


def explode(row: dict[str, float]) -> str:
    raise RuntimeError("this model always fails")
