"""The learner as a process: ``rendezvous learner FILE``, or the child ``serve`` starts.

Training holds the GIL for as long as a fit takes; in a process of its own it never makes
a request wait. The process stops on SIGTERM or SIGINT once the training under way ends,
and may also be killed outright: its progress is durable (see :mod:`.cursor`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server

from ..config import Deployment
from ..errors import ConfigError, Problem
from .learner import DeploymentLearner, learning_models, step_all
from .learner_metrics import LearnerMetrics

__all__ = ["LearnerProcess", "check_shareable", "run_learners"]

log = logging.getLogger("rendezvous.learner")


def check_shareable(deployments: Sequence[Deployment]) -> list[Deployment]:
    """The deployments with learning models; each must have an archive other processes
    can read (a learner process cannot see a ``memory`` archive)."""
    learning = [d for d in deployments if learning_models(d)]
    for dep in learning:
        if dep.archive == "memory":
            raise ConfigError(
                dep.name,
                [Problem("archive", "a learner process reads the archive of the serving "
                         "processes: use sqlite:///… or postgresql://…, not memory")],
            )  # fmt: skip
    return learning


def run_learners(
    deployments: Sequence[Deployment],
    *,
    poll_s: float = 0.5,
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
    parent: int | None = None,
) -> None:
    """Learn for every deployment with learning models until SIGTERM or SIGINT, or until
    the process ``parent`` (a pid) is gone."""
    learning = check_shareable(deployments)
    if not learning:
        raise ConfigError(
            "learner", [Problem("models", "no model of these deployments has a learning: block")]
        )
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    registry = CollectorRegistry()
    metrics = LearnerMetrics(registry)
    if metrics_port is not None:
        start_http_server(metrics_port, addr=metrics_host, registry=registry)
    learners = [DeploymentLearner(d, metrics=metrics) for d in learning]
    started: list[DeploymentLearner] = []
    try:
        for learner in learners:
            learner.start()
            started.append(learner)
        log.info("learning for %s", [learner.name for learner in learners])
        while not stopping.is_set():
            if parent is not None and os.getppid() != parent:
                # A server stopped by SIGTERM may exit without stopping its children.
                log.info("the parent process %d is gone; stopping", parent)
                break
            if step_all(started):
                stopping.wait(poll_s)
    finally:
        for learner in started:
            learner.stop()


class LearnerProcess:
    """The child process ``serve`` starts for the deployments' learning models."""

    def __init__(self, files: Sequence[Path], *, log_level: str = "info") -> None:
        paths = [str(f) for f in files]
        self.argv = [sys.executable, "-m", "rendezvous", "learner", *paths]
        self.argv += ["--log-level", log_level, "--parent", str(os.getpid())]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self.proc is None:
            # Training is background work: on a machine it shares with serving, the
            # scheduler should give the CPU to answers first.
            self.proc = subprocess.Popen(self.argv, preexec_fn=_lower_priority)
            log.info("started the learner process %d", self.proc.pid)

    def stop(self, timeout: float = 30.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("the learner %d did not stop in %.0fs; killing it", proc.pid, timeout)
            proc.kill()
            proc.wait()


def _lower_priority() -> None:
    with contextlib.suppress(OSError):
        os.nice(10)
