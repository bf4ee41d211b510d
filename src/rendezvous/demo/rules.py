"""The demo's champion: plain business rules on breast-cancer measurements, no ML.

The kind of model a team starts with and keeps as a reference: a few thresholds a
clinician can read. In scikit-learn's data set, class 0 is malignant and class 1 benign.
"""

from __future__ import annotations

MALIGNANT, BENIGN = 0, 1


def score(row: dict[str, float]) -> int:
    """Malignant when the cell nuclei are large and irregular."""
    if row["worst concave points"] > 0.16:
        return MALIGNANT
    if row["worst radius"] > 17.0 and row["worst texture"] > 20.0:
        return MALIGNANT
    if row["mean concave points"] > 0.05 and row["worst area"] > 800.0:
        return MALIGNANT
    return BENIGN
