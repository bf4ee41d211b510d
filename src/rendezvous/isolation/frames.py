"""What a serving process and its model process say to each other over a pipe.

Each frame is a 4-byte big-endian length and a msgpack body: a tagged msgspec struct, so
one decoder reads every kind. Requests and scores travel as the bus's own structs.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

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
    "ScoreKey",
    "Scores",
    "Status",
    "ToChild",
    "ToParent",
    "Work",
    "decode_scores",
    "decoder_to_child",
    "decoder_to_parent",
    "encode",
    "header",
    "score_frame",
]

HEADER = struct.Struct(">I")
_encoder = msgspec.msgpack.Encoder()


class ModelSpec(msgspec.Struct, array_like=True):
    """How the child runs one model's executor (the model itself comes in ``Install``)."""

    name: str
    batch: dict[str, float | int | None]  # a BatchConfig, as its fields
    queue_size: int
    linger_ms: float
    inline: bool | None = None  # ModelConfig.inline: unset, calls move to the loop once fast


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


class ScoreKey(msgspec.Struct, array_like=True, gc=False):
    """What the serving process needs of every score: whose it is, and how the call went."""

    request_id: str
    model: str
    error: str | None
    batch_size: int
    latency_ms: float
    computed_at: float


class Scores(msgspec.Struct, tag=True, array_like=True):
    """Scores of this turn of the child's loop, already archived when the child has the
    archive. ``blob`` is the msgpack of the full ``list[Score]``: the serving process
    decodes it only when a collector still waits for one of them, or to archive them."""

    keys: list[ScoreKey]
    blob: bytes


def score_frame(scores: Sequence[Score]) -> Scores:
    keys = [
        ScoreKey(s.request_id, s.model, s.error, s.batch_size, s.latency_ms, s.computed_at)
        for s in scores
    ]
    return Scores(keys, _encoder.encode(scores))


_decode_scores = msgspec.msgpack.Decoder(list[Score]).decode


def decode_scores(blob: bytes) -> list[Score]:
    return _decode_scores(blob)


class Archived(msgspec.Struct, tag=True, array_like=True):
    """``count`` more scores the child sent are written to the archive."""

    count: int


class Status(msgspec.Struct, tag=True, array_like=True):
    """Requests queued per model in the child, for the parent's queue-depth gauges."""

    backlog: dict[str, int]


ToParent = Ready | Installed | Scores | Archived | Status


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
