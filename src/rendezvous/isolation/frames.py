"""What a serving process and its model process say to each other over a pipe.

Each frame is a 4-byte big-endian length and a msgpack body: a tagged msgspec struct, so
one decoder reads every kind. Requests and scores travel as the bus's own structs.
"""

from __future__ import annotations

import struct

import msgspec

from ..messages import Request, Score

__all__ = [
    "Archived",
    "Init",
    "Install",
    "Installed",
    "ModelSpec",
    "Ready",
    "Remove",
    "Scores",
    "Status",
    "ToChild",
    "ToParent",
    "Work",
    "decoder_to_child",
    "decoder_to_parent",
    "encode",
    "header",
]

HEADER = struct.Struct(">I")


class ModelSpec(msgspec.Struct, array_like=True):
    """How the child runs one model's executor (the model itself comes in ``Install``)."""

    name: str
    batch: dict[str, float | int | None]  # a BatchConfig, as its fields
    queue_size: int
    linger_ms: float


# -- parent to child ----------------------------------------------------------------------


class Init(msgspec.Struct, tag=True, array_like=True):
    """The first frame: which deployment, where its archive is, which models run here."""

    deployment: str
    archive: str | None  # the archive URL the child writes scores to itself; None: the parent
    base_dir: str | None
    archive_buffer: int
    models: list[ModelSpec]


class Install(msgspec.Struct, tag=True, array_like=True):
    """Compute ``model`` with this pickled object from the next batch on."""

    model: str
    blob: bytes


class Work(msgspec.Struct, tag=True, array_like=True):
    """Requests for every model of the child, as the input stream carried them."""

    requests: list[Request]


class Remove(msgspec.Struct, tag=True, array_like=True):
    """Stop computing ``model`` once what is queued for it is done (it moved to the parent)."""

    model: str


ToChild = Init | Install | Work | Remove


# -- child to parent ----------------------------------------------------------------------


class Ready(msgspec.Struct, tag=True, array_like=True):
    pid: int
    priority: str  # the CPU priority the child got: idle, nice:<n> or normal


class Installed(msgspec.Struct, tag=True, array_like=True):
    model: str
    version: str | None
    error: str | None = None


class Scores(msgspec.Struct, tag=True, array_like=True):
    """One executor batch of scores, already archived when the child has the archive."""

    scores: list[Score]


class Archived(msgspec.Struct, tag=True, array_like=True):
    """``count`` more scores the child sent are written to the archive."""

    count: int


class Status(msgspec.Struct, tag=True, array_like=True):
    """Requests queued per model in the child, for the parent's queue-depth gauges."""

    backlog: dict[str, int]


ToParent = Ready | Installed | Scores | Archived | Status

_encoder = msgspec.msgpack.Encoder()


def encode(frame: ToChild | ToParent) -> bytes:
    """The frame with its length header, ready to write."""
    body = _encoder.encode(frame)
    return HEADER.pack(len(body)) + body


def header(data: bytes) -> int:
    """The body length announced by a 4-byte header."""
    (length,) = HEADER.unpack(data)
    return int(length)


def decoder_to_child() -> msgspec.msgpack.Decoder[ToChild]:
    return msgspec.msgpack.Decoder(ToChild)


def decoder_to_parent() -> msgspec.msgpack.Decoder[ToParent]:
    return msgspec.msgpack.Decoder(ToParent)
