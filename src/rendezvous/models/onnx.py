"""ONNX models on ONNX Runtime's CPU provider.

One thread per session by default: the executor already gives each model its own thread,
and several models (champion, challengers, canary) share the machine's cores. A model that
is worth more threads gets them with ``options.intra_op_num_threads``.

A classifier converted by skl2onnx has two outputs: labels, and probabilities either as a
plain ``(n, k)`` tensor or — with its default ZipMap — as a list of ``{class: p}`` dicts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ..config import Deployment, ModelConfig
from ..errors import ModelError, ModelLoadError
from ._loading import (
    check_options,
    file_version,
    make_info,
    option_classes,
    option_int,
    require,
    source_file,
    where,
)
from .base import Matrix, Model, ModelInfo, Output

__all__ = ["OnnxModel", "load_onnx"]

OPTIONS = {
    "classes",
    "intra_op_num_threads",
    "inter_op_num_threads",
    "label_output",
    "probabilities_output",
}

_DTYPES: dict[str, type[np.generic]] = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
}


class OnnxModel(Model):
    def __init__(
        self,
        info: ModelInfo,
        session: Any,
        dtype: type[np.generic],
        label_output: str | None,
        probabilities_output: str | None,
    ) -> None:
        super().__init__(info)
        self.session = session
        self._input = session.get_inputs()[0].name
        self._dtype = dtype
        self._label = label_output
        self._proba = probabilities_output
        self._fetch = [n for n in (label_output, probabilities_output) if n is not None]

    def predict(self, rows: Matrix) -> Output:
        feed = {self._input: rows.astype(self._dtype, copy=False)}
        try:
            results = dict(zip(self._fetch, self.session.run(self._fetch, feed), strict=True))
        except Exception as exc:
            raise ModelError(f"model '{self.name}': onnxruntime failed: {exc}") from exc
        classes = self.info.classes or ()
        proba = None if self._proba is None else _proba_rows(results[self._proba], classes)
        if self._label is not None:
            labels = np.asarray(results[self._label]).ravel().tolist()
        else:  # a probabilities-only model: the most likely class is the prediction
            labels = [classes[int(np.argmax(row))] for row in proba or ()]
        return Output(labels, proba)


def _proba_rows(value: Any, classes: Sequence[Any]) -> list[list[float]]:
    if isinstance(value, list):  # ZipMap: one {class: probability} dict per row
        return [[float(row[c]) for c in classes] for row in value]
    array: npt.NDArray[Any] = np.asarray(value, dtype=np.float64)
    return array.reshape(array.shape[0], -1).tolist()


def _pick_outputs(cfg: ModelConfig, names: list[str]) -> tuple[str | None, str | None]:
    for key in ("label_output", "probabilities_output"):
        if key in cfg.options and cfg.options[key] not in names:
            raise ModelLoadError(f"{where(cfg)}: options.{key} is not one of the outputs {names}")
    proba = cfg.options.get("probabilities_output") or next(
        (n for n in names if "prob" in n.lower()), None
    )
    rest = [n for n in names if n != proba]
    label = cfg.options.get("label_output") or next(
        (n for n in rest if "label" in n.lower()), rest[0] if rest else None
    )
    if proba is None and len(names) == 2:
        proba = next(n for n in names if n != label)
    return label, proba


def _session(cfg: ModelConfig, deployment: Deployment) -> Any:
    ort = require("onnxruntime", "onnxruntime", "onnx", "running ONNX models")
    path = source_file(cfg, deployment)
    so = ort.SessionOptions()
    so.intra_op_num_threads = option_int(cfg, "intra_op_num_threads", 1)
    if "inter_op_num_threads" in cfg.options:
        so.inter_op_num_threads = option_int(cfg, "inter_op_num_threads", 0)
    try:
        return ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ModelLoadError(f"{where(cfg)}: cannot load {path} as ONNX: {exc}") from exc


def _classes(cfg: ModelConfig, probe: Any) -> tuple[Any, ...] | None:
    """Classes from the options, else the ZipMap's keys, else the columns' positions."""
    given = option_classes(cfg)
    if isinstance(probe, list):
        keys = list(probe[0]) if probe else []
        if given is not None and set(given) != set(keys):
            raise ModelLoadError(f"{where(cfg)}: options.classes {list(given)} != model's {keys}")
        return given or tuple(np.asarray(keys).tolist())
    width = int(np.asarray(probe).reshape(1, -1).shape[1])
    if given is not None and len(given) != width:
        raise ModelLoadError(
            f"{where(cfg)}: options.classes has {len(given)} labels, the model gives {width}"
        )
    return given or tuple(range(width))


def load_onnx(cfg: ModelConfig, deployment: Deployment) -> OnnxModel:
    check_options(cfg, OPTIONS)
    session = _session(cfg, deployment)
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise ModelLoadError(
            f"{where(cfg)}: expected a model with one input, it has {[i.name for i in inputs]}"
        )
    dtype = _DTYPES.get(inputs[0].type)
    if dtype is None:
        raise ModelLoadError(f"{where(cfg)}: unsupported input type {inputs[0].type}")
    width = deployment.input_schema.width
    shape = inputs[0].shape
    if len(shape) == 2 and isinstance(shape[1], int) and shape[1] != width:
        raise ModelLoadError(
            f"{where(cfg)}: the model takes {shape[1]} features, "
            f"the deployment's schema has {width}"
        )
    label, proba = _pick_outputs(cfg, [o.name for o in session.get_outputs()])
    classes = None
    if proba is not None:
        # One zero row at load: finds the classes of a ZipMap and proves the model runs.
        try:
            probe = session.run([proba], {inputs[0].name: np.zeros((1, width), dtype=dtype)})[0]
        except Exception as exc:
            raise ModelLoadError(f"{where(cfg)}: a trial prediction failed: {exc}") from exc
        classes = _classes(cfg, probe)
    path = source_file(cfg, deployment)
    info = make_info(cfg, deployment, file_version(path), classes, file=str(path))
    return OnnxModel(info, session, dtype, label, proba)
