"""Open Inference Protocol tensors on the wire: JSON data and the binary tensor extension.

A request body is a JSON header, optionally followed by raw tensor bytes (the
``binary_tensor_data`` extension that Triton clients use by default): the HTTP header
``Inference-Header-Content-Length`` says where the JSON ends, and every input carrying
``parameters.binary_data_size`` takes that many bytes from what follows, in input order.
Numbers are little-endian; a BYTES element is a 4-byte little-endian length, then its bytes.
Responses use the same layout for the outputs asked for in binary.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import InputError, MalformedBody

__all__ = [
    "BYTES",
    "DATATYPES",
    "HEADER_LENGTH",
    "SUPPORTED",
    "Tensor",
    "decode_inputs",
    "encode_outputs",
    "split_body",
]

HEADER_LENGTH = "Inference-Header-Content-Length"
BYTES = "BYTES"
DATATYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
SUPPORTED = [*DATATYPES, BYTES]
_LENGTH = struct.Struct("<I")


@dataclass(frozen=True, slots=True)
class Tensor:
    """A named tensor; ``data`` is flat, in row-major order (an object array for BYTES)."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    data: npt.NDArray[Any]


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """The JSON header and the binary part of a request body."""
    if header_length is None:
        return body, b""
    try:
        n = int(header_length)
    except ValueError:
        n = -1
    if not 0 <= n <= len(body):
        raise MalformedBody(
            f"expected an integer from 0 to the body size ({len(body)}), got {header_length!r}",
            "headers.inference-header-content-length",
        )
    return body[:n], body[n:]


def decode_inputs(specs: Any, binary: bytes) -> list[Tensor]:
    """Validate the request's ``inputs`` and read each tensor from JSON or binary data."""
    if not isinstance(specs, list) or not specs:
        raise InputError("expected a non-empty list of input tensors", "inputs")
    tensors: list[Tensor] = []
    offset = 0
    for i, spec in enumerate(specs):
        loc = f"inputs[{i}]"
        name, datatype, shape, params = _header(spec, loc)
        if "shared_memory_region" in params:
            raise InputError("shared memory is not supported: send data or binary data", loc)
        count = math.prod(shape)
        size = params.get("binary_data_size")
        if size is None:
            if "data" not in spec:
                raise InputError("missing 'data' (or parameters.binary_data_size)", loc)
            data = _from_json(spec["data"], datatype, count, shape, f"{loc}.data")
        else:
            sloc = f"{loc}.parameters.binary_data_size"
            if "data" in spec:
                raise InputError("give either 'data' or binary data, not both", loc)
            if type(size) is not int or size < 0:
                raise InputError("expected a non-negative integer", sloc)
            if offset + size > len(binary):
                raise InputError(
                    f"{size} bytes asked for, {len(binary) - offset} left in the binary part"
                    " of the body (is the Inference-Header-Content-Length header set?)",
                    sloc,
                )
            raw = binary[offset : offset + size]
            offset += size
            data = _from_bytes(raw, datatype, count, shape, sloc)
        tensors.append(Tensor(name, datatype, shape, data))
    if offset != len(binary):
        raise MalformedBody(
            f"{len(binary) - offset} bytes after the last input's binary data", "body"
        )
    return tensors


def _header(spec: Any, loc: str) -> tuple[str, str, tuple[int, ...], dict[str, Any]]:
    if not isinstance(spec, dict):
        raise InputError("expected a tensor {name, shape, datatype, data}", loc)
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise InputError("expected a non-empty string", f"{loc}.name")
    datatype = spec.get("datatype")
    if datatype not in DATATYPES and datatype != BYTES:
        raise InputError(
            f"unsupported datatype {datatype!r}; expected one of {SUPPORTED}", f"{loc}.datatype"
        )
    shape = spec.get("shape")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise InputError(f"expected a list of non-negative integers, got {shape!r}", f"{loc}.shape")
    params = spec.get("parameters") or {}
    if not isinstance(params, dict):
        raise InputError("expected an object", f"{loc}.parameters")
    return name, datatype, tuple(shape), params


def _from_json(
    data: Any, datatype: str, count: int, shape: Sequence[int], loc: str
) -> npt.NDArray[Any]:
    if not isinstance(data, list):
        raise InputError(f"expected a list of values, got {_describe(data)}", loc)
    flat = _flatten(data)
    if len(flat) != count:
        raise InputError(f"shape {list(shape)} holds {count} values, data has {len(flat)}", loc)
    if datatype == BYTES:
        ok: Any = (str,)
    elif datatype == "BOOL":
        ok = (bool,)
    elif datatype.startswith(("INT", "UINT")):
        ok = (int,)
    else:
        ok = (int, float)
    # type() rather than isinstance: True must not pass for a number, nor 1 for a boolean
    for j, v in enumerate(flat):
        if type(v) not in ok:
            raise InputError(
                f"expected {'a string' if ok == (str,) else datatype} values, got {_describe(v)}",
                f"{loc}[{j}]",
            )
    if datatype == BYTES:
        return np.array(flat, dtype=object)
    try:
        return np.asarray(flat, dtype=DATATYPES[datatype])
    except OverflowError as exc:
        raise InputError(f"a value does not fit {datatype}: {exc}", loc) from None


def _flatten(data: list[Any]) -> list[Any]:
    """Nested lists in row-major order; iterative, so deep nesting cannot exhaust the stack."""
    if not any(type(v) is list for v in data):
        return data
    out: list[Any] = []
    stack = [iter(data)]
    while stack:
        for v in stack[-1]:
            if type(v) is list:
                stack.append(iter(v))
                break
            out.append(v)
        else:
            stack.pop()
    return out


def _from_bytes(
    raw: bytes, datatype: str, count: int, shape: Sequence[int], loc: str
) -> npt.NDArray[Any]:
    if datatype == BYTES:
        return _unpack_bytes(raw, count, shape, loc)
    dtype = DATATYPES[datatype]
    if len(raw) != count * dtype.itemsize:
        raise InputError(
            f"{len(raw)} bytes, but shape {list(shape)} of {datatype} needs "
            f"{count * dtype.itemsize}",
            loc,
        )
    return np.frombuffer(raw, dtype=dtype)


def _unpack_bytes(raw: bytes, count: int, shape: Sequence[int], loc: str) -> npt.NDArray[Any]:
    items: list[str] = []
    offset = 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise InputError("truncated BYTES element length", loc)
        (n,) = _LENGTH.unpack_from(raw, offset)
        offset += 4
        if offset + n > len(raw):
            raise InputError(f"BYTES element {len(items)} is truncated", loc)
        try:
            items.append(raw[offset : offset + n].decode("utf-8"))
        except UnicodeDecodeError:
            raise InputError(f"BYTES element {len(items)} is not UTF-8 text", loc) from None
        offset += n
    if len(items) != count:
        raise InputError(
            f"shape {list(shape)} holds {count} values, binary data has {len(items)}", loc
        )
    return np.array(items, dtype=object)


def encode_outputs(
    tensors: Sequence[Tensor], binary: Collection[str]
) -> tuple[list[dict[str, Any]], bytes]:
    """Output tensors as JSON, those named in ``binary`` as raw bytes after the JSON."""
    described: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for t in tensors:
        out: dict[str, Any] = {"name": t.name, "datatype": t.datatype, "shape": list(t.shape)}
        if t.name in binary:
            raw = _to_bytes(t)
            out["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            out["data"] = t.data.tolist()
        described.append(out)
    return described, b"".join(chunks)


def _to_bytes(t: Tensor) -> bytes:
    if t.datatype == BYTES:
        parts: list[bytes] = []
        for s in t.data.tolist():
            b = s.encode("utf-8")
            parts += (_LENGTH.pack(len(b)), b)
        return b"".join(parts)
    return np.ascontiguousarray(t.data, dtype=DATATYPES[t.datatype]).tobytes()


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return f'string "{value[:20]}…"' if len(value) > 20 else f'string "{value}"'
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"{type(value).__name__} {value}"
    return type(value).__name__
