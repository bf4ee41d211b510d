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
    "Call",
    "Init",
    "Install",
    "Installed",
    "ModelSpec",
    "Outgoing",
    "Ready",
    "Remove",
    "Scores",
    "Status",
    "ToChild",
    "ToParent",
    "Work",
    "WorkOut",
    "decode_scores",
    "decoder_to_child",
    "decoder_to_parent",
    "encode",
    "encoded",
    "header",
    "score_frame",
]

HEADER = struct.Struct(">I")
_encoder = msgspec.msgpack.Encoder()


class ModelSpec(msgspec.Struct, array_like=True):
    """How the child runs one model's lane (the model itself comes in ``Install``). Lanes
    never linger for company: requests arrive in batches already."""

    name: str
    batch: dict[str, float | int | None]  # a BatchConfig, as its fields
    queue_size: int
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


class WorkOut(msgspec.Struct, tag="Work", array_like=True):
    """A ``Work`` frame as the serving process writes it: each request was encoded when it
    was handed over, so sending a frame costs a copy, not a burst of encoding on the loop
    that answers users."""

    requests: list[msgspec.Raw]


def encoded(request: Request) -> msgspec.Raw:
    """One request, ready for a :class:`WorkOut`."""
    return msgspec.Raw(_encoder.encode(request))


class Remove(msgspec.Struct, tag=True, array_like=True):
    """Stop computing ``model`` once what is queued for it is done (it moved to the parent)."""

    model: str


ToChild = Init | Install | Work | Remove
Outgoing = Init | Install | WorkOut | Remove


# -- child to parent ----------------------------------------------------------------------


class Ready(msgspec.Struct, tag=True, array_like=True):
    pid: int
    priority: str  # the CPU priority the child got: idle, nice:<n> or normal


class Installed(msgspec.Struct, tag=True, array_like=True):
    model: str
    version: str | None
    error: str | None = None


class Call(msgspec.Struct, array_like=True):
    """One model call in the child (or one dropped request): whose scores it made and how
    it went. The serving process keeps its books and metrics per call, not per score."""

    model: str
    request_ids: list[str]
    batch_size: int
    latency_ms: float
    errors: int = 0  # scores that are errors, dropped work aside
    dropped: int = 0  # scores for work the model never computed (its queue was full)


class Scores(msgspec.Struct, tag=True, array_like=True):
    """Scores of this turn of the child's loop, already archived when the child has the
    archive. ``blob`` is the msgpack of the full ``list[Score]``: the serving process
    decodes it only when a collector still waits for one of them, or to archive them."""

    calls: list[Call]
    blob: bytes


def score_frame(scores: Sequence[Score]) -> Scores:
    """The frame for ``scores``, as executors publish them: a model call's scores together."""
    calls: list[Call] = []
    last: tuple[str, float, float] | None = None
    call = Call("", [], 0, 0.0)
    for s in scores:
        key = (s.model, s.computed_at, s.latency_ms)
        if key != last:
            last, call = key, Call(s.model, [], s.batch_size, s.latency_ms)
            calls.append(call)
        call.request_ids.append(s.request_id)
        if s.error is not None:
            if s.error.startswith("dropped:"):
                call.dropped += 1
            else:
                call.errors += 1
    return Scores(calls, _encoder.encode(scores))


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


def encode(frame: ToChild | Outgoing | ToParent) -> bytes:
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
