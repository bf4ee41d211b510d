"""Split traffic: which requests a split model answers, sticky per user.

Each split model owns a range of ``[0, 1)`` as wide as its share, in file order. A request's
key (a user id, say) hashes to a point of that interval, so one key always lands on the same
model, and raising a share only moves keys from the champion to the model, never between
models. Requests without a key are spread by their request id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = ["SplitRouter"]


def _point(key: str) -> float:
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class SplitRouter:
    """Assigns a request to a split model, or to nobody (the normal schedule answers)."""

    def __init__(self, shares: Sequence[tuple[str, float]]) -> None:
        self.ranges: list[tuple[float, str]] = []
        upper = 0.0
        for model, share in shares:
            upper += share
            self.ranges.append((upper, model))

    def __bool__(self) -> bool:
        return bool(self.ranges)

    def __repr__(self) -> str:
        return f"SplitRouter({self.ranges})"

    def assign(self, key: str) -> str | None:
        point = _point(key)
        for upper, model in self.ranges:
            if point < upper:
                return model
        return None
