"""Which parts of the rendezvous one process runs.

One process runs everything by default (the embedded mode, and the only one a ``memory`` bus
allows). Over Redis the parts spread over processes and hosts: API processes (``serve``)
accept requests and collect answers, worker processes run the executors of a model, and
archiver processes move the scores stream into the archive.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Roles"]


@dataclass(frozen=True)
class Roles:
    api: bool = True  # accept requests, run the collector, archive requests
    models: frozenset[str] | None = None  # executors to run here; None means every model
    archiver: bool = True  # store every score published on the bus
    replicas: int = 1  # executors (bus consumers) per model in this process

    def __post_init__(self) -> None:
        if self.replicas < 1:
            raise ValueError(f"replicas must be at least 1, got {self.replicas}")

    @classmethod
    def everything(cls) -> Roles:
        return cls()

    @classmethod
    def api_only(cls) -> Roles:
        return cls(api=True, models=frozenset(), archiver=False)

    @classmethod
    def worker(cls, models: Iterable[str], replicas: int = 1) -> Roles:
        return cls(api=False, models=frozenset(models), archiver=False, replicas=replicas)

    @classmethod
    def archiver_only(cls) -> Roles:
        return cls(api=False, models=frozenset(), archiver=True)

    @property
    def is_everything(self) -> bool:
        return self.api and self.models is None and self.archiver

    def runs(self, model: str) -> bool:
        return self.models is None or model in self.models
