"""The onnx kind: input casting, both probability forms, classes, session options."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from skl2onnx import to_onnx
from skl2onnx.common.data_types import DoubleTensorType
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from rendezvous.errors import ModelError, ModelLoadError
from rendezvous.models import OnnxModel

from .conftest import Data
from .helpers import load


def onnx_model(base: Path, source: str, **options: Any) -> OnnxModel:
    model = load(base, {"kind": "onnx", "source": source, "options": options})
    assert isinstance(model, OnnxModel)
    return model


def test_zipmap_and_tensor_forms_agree(artifacts: Path, data: Data) -> None:
    zipmap = onnx_model(artifacts, "lr.onnx").predict(data.X[:40])
    tensor = onnx_model(artifacts, "lr_tensor.onnx").predict(data.X[:40])
    assert zipmap.predictions == tensor.predictions
    assert np.allclose(zipmap.probabilities or [], tensor.probabilities or [], atol=1e-6)


def test_classes_come_from_zipmap_keys_or_positions(artifacts: Path) -> None:
    assert onnx_model(artifacts, "lr.onnx").info.classes == (0, 1)
    assert onnx_model(artifacts, "lr_tensor.onnx").info.classes == (0, 1)


def test_string_labels_through_zipmap(tmp_path: Path, data: Data) -> None:
    labels = np.where(data.y == 1, "benign", "malignant")
    clf = make_pipeline(StandardScaler(), LogisticRegression()).fit(data.X, labels)
    onx = to_onnx(clf, data.X[:1].astype(np.float32), target_opset=17)
    (tmp_path / "names.onnx").write_bytes(onx.SerializeToString())
    model = onnx_model(tmp_path, "names.onnx")
    assert model.info.classes == ("benign", "malignant")
    out = model.predict(data.X[:10])
    assert all(p in ("benign", "malignant") for p in out.predictions)
    # options.classes reorders the probability columns of a ZipMap
    swapped = onnx_model(tmp_path, "names.onnx", classes=["malignant", "benign"])
    flipped = swapped.predict(data.X[:10]).probabilities or []
    assert [row[::-1] for row in flipped] == out.probabilities


def test_a_double_input_regressor(tmp_path: Path, data: Data) -> None:
    reg = LinearRegression().fit(data.X, data.y.astype(float))
    onx = to_onnx(reg, initial_types=[("X", DoubleTensorType([None, 30]))], target_opset=17)
    (tmp_path / "reg.onnx").write_bytes(onx.SerializeToString())
    model = onnx_model(tmp_path, "reg.onnx")
    out = model.predict(data.X[:5])
    assert out.probabilities is None
    assert model.info.classes is None
    assert np.allclose(out.predictions, reg.predict(data.X[:5]))


def test_one_thread_by_default_and_options_override(artifacts: Path) -> None:
    default = onnx_model(artifacts, "lr.onnx")
    assert default.session.get_session_options().intra_op_num_threads == 1
    wider = onnx_model(artifacts, "lr.onnx", intra_op_num_threads=2)
    assert wider.session.get_session_options().intra_op_num_threads == 2


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"classes": [0, 1, 2]}, r"options.classes \[0, 1, 2\] != model's \[0, 1\]"),
        ({"intra_op_num_threads": "many"}, "intra_op_num_threads must be an integer"),
        ({"label_output": "answer"}, "options.label_output is not one of the outputs"),
    ],
)
def test_bad_options(artifacts: Path, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ModelLoadError, match=message):
        onnx_model(artifacts, "lr.onnx", **options)


def test_tensor_classes_must_match_the_width(artifacts: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"options.classes has 3 labels, the model gives 2"):
        onnx_model(artifacts, "lr_tensor.onnx", classes=["a", "b", "c"])


def test_a_failing_run_is_a_model_error(artifacts: Path) -> None:
    with pytest.raises(ModelError, match="onnxruntime failed"):
        onnx_model(artifacts, "lr.onnx").predict(np.zeros((2, 4)))
