"""The two messages that travel on the bus: a request on the input stream, a score back.

They are msgspec structs: construction costs about as much as a tuple on the hot path,
and the same types encode to msgpack for the Redis bus.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["Prediction", "Request", "Score"]

# A prediction is a JSON scalar: a class label, a number, or a string from a rule.
Prediction = float | int | str | bool | None


class Request(msgspec.Struct, frozen=True, gc=False):
    """One row for every model of a deployment, exactly as the models will see it."""

    id: str
    deployment: str
    features: list[float]
    received_at: float  # wall clock (time.time()) when the API accepted it
    reply_to: str  # which collector waits for the answer


class Score(msgspec.Struct, frozen=True, gc=False):
    """One model's answer to one request, with the version of the object that computed it."""

    request_id: str
    deployment: str
    model: str
    version: str
    prediction: Any = None
    probabilities: list[float] | None = None
    error: str | None = None
    latency_ms: float = 0.0  # model compute time for the batch this row was in
    queue_ms: float = 0.0  # from acceptance by the API to the start of computation
    batch_size: int = 1
    reply_to: str = ""
    computed_at: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None
