"""The frames between a serving process and its model process: what one side writes, the
other reads back whole."""

from __future__ import annotations

from rendezvous.isolation.frames import (
    HEADER,
    Scores,
    Work,
    WorkOut,
    decode_scores,
    decoder_to_child,
    decoder_to_parent,
    encode,
    encoded,
    header,
    score_frame,
)
from rendezvous.messages import Request, Score


def _score(rid: str, model: str, at: float, *, error: str | None = None, n: int = 2) -> Score:
    return Score(rid, "dep", model, "v1", prediction=1, error=error, latency_ms=at / 10,
                 batch_size=n, computed_at=at)  # fmt: skip


def test_work_written_from_encoded_requests_reads_back_as_work() -> None:
    requests = [Request(f"r{i}", "dep", [float(i), 0.5], float(i), "api-1") for i in range(3)]
    data = encode(WorkOut([encoded(r) for r in requests]))
    assert header(data[: HEADER.size]) == len(data) - HEADER.size
    frame = decoder_to_child().decode(data[HEADER.size :])
    assert isinstance(frame, Work)
    assert frame.requests == requests


def test_a_score_frame_groups_scores_by_model_call() -> None:
    scores = [
        _score("r1", "a", 1.0),
        _score("r2", "a", 1.0, error="ValueError: bad row"),
        _score("r1", "b", 2.0, n=1),
        _score("r3", "a", 3.0, error="dropped: model queue full", n=1),
        _score("r4", "a", 3.0, error="dropped: model queue full", n=1),
    ]
    frame = score_frame(scores)
    calls = [(c.model, c.request_ids, c.batch_size, c.errors, c.dropped) for c in frame.calls]
    assert calls == [
        ("a", ["r1", "r2"], 2, 1, 0),
        ("b", ["r1"], 1, 0, 0),
        ("a", ["r3", "r4"], 1, 0, 2),
    ]
    assert frame.calls[0].latency_ms == 0.1
    # the full scores travel beside the calls, for the collector and the archive
    parsed = decoder_to_parent().decode(encode(frame)[HEADER.size :])
    assert isinstance(parsed, Scores)
    assert decode_scores(parsed.blob) == scores
