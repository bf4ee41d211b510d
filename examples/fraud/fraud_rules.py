"""Business rules for the fraud example: the champion a team starts with, and a stricter
variant to compare against it on live traffic."""

from __future__ import annotations


def score(row: dict[str, float]) -> int:
    """1 = fraud. Large amounts from risky countries, or very large amounts from new customers."""
    if row["amount"] > 1000 and row["country_risk"] > 0.5:
        return 1
    return 1 if row["amount"] > 5000 and row["age"] < 25 else 0


def strict(row: dict[str, float]) -> dict[str, object]:
    """A stricter candidate that also gives a probability."""
    risk = min(1.0, row["amount"] / 2000 * (0.5 + row["country_risk"]))
    return {"prediction": int(risk > 0.5), "probabilities": [1 - risk, risk]}
