"""check_output: what every model call's output goes through before it becomes scores."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from rendezvous.models.base import ModelInfo, Output, check_output

INFO = ModelInfo("m", "v1", "python", ("a", "b"), classes=(0, 1))


def test_plain_predictions_pass_as_they_are() -> None:
    preds: list[Any] = [1, 2.5, "yes", True, None]
    out = check_output(Output(preds), 5, INFO)
    assert out.predictions == preds
    assert [type(p) for p in out.predictions] == [int, float, str, bool, type(None)]


def test_numpy_scalars_become_plain_values() -> None:
    preds: list[Any] = [np.int64(1), np.float32(0.5), np.bool_(True), 3]
    out = check_output(Output(preds), 4, INFO)
    assert out.predictions == [1, 0.5, True, 3]
    assert [type(p) for p in out.predictions] == [int, float, bool, int]


def test_a_numpy_array_of_predictions_becomes_a_list_of_plain_values() -> None:
    out = check_output(Output(np.array([0, 1, 1])), 3, INFO)  # type: ignore[arg-type]
    assert out.predictions == [0, 1, 1]
    assert all(type(p) is int for p in out.predictions)


def test_a_prediction_that_is_not_a_scalar_is_an_error() -> None:
    with pytest.raises(TypeError, match="expected a number, string or boolean, got dict"):
        check_output(Output([1, {"label": 2}]), 2, INFO)


def test_one_prediction_per_row() -> None:
    with pytest.raises(ValueError, match="model returned 2 predictions for 3 rows"):
        check_output(Output([1, 0]), 3, INFO)


def test_one_probability_row_per_row_as_wide_as_the_classes() -> None:
    with pytest.raises(ValueError, match="model returned 1 probability rows for 2 rows"):
        check_output(Output([1, 0], [[0.1, 0.9]]), 2, INFO)
    with pytest.raises(ValueError, match="expected 2 probabilities per row, got 3"):
        check_output(Output([1, 0], [[0.1, 0.9], [0.2, 0.3, 0.5]]), 2, INFO)
    ok = check_output(Output([1, 0], [[0.1, 0.9], [0.8, 0.2]]), 2, INFO)
    assert ok.probabilities == [[0.1, 0.9], [0.8, 0.2]]
