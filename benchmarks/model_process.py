"""Model process benchmark: the CPU the shadows' work costs per request.

On a small machine every CPU cycle the model process spends is one the champion's requests
compete for (see ``http_serving.py``'s open loop), so this measures it directly, in one
process, on the (c) deployment of ``http_serving.py`` (two LogisticRegression shadows on
breast_cancer). At ``--rate`` requests a second, a ``Work`` frame arrives at the model
process's worker every ``--window-ms`` (the serving process's hand-over window), and the
process's CPU time (every thread) is divided by the requests:

  direct     the baseline: per frame, decode it, build one feature matrix, call each model
             once, build the scores and the ``Scores`` frame; what no design of the model
             process can go below, its archive aside
  child      the model process's worker (lanes, runners, score frames), no archive
  +archive   the same writing every score to SQLite, as it does when the deployment's
             archive is a database (the default in production)

The three take turns, ``--rounds`` times, so drifts of the machine hit each alike; medians
are printed with their ratio to ``direct``. Numerical libraries are held to one thread, as
in the model process.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy loads, as the model process does

import argparse  # noqa: E402
import asyncio  # noqa: E402
import pickle  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Awaitable, Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import msgspec  # noqa: E402
from http_serving import build  # noqa: E402
from sklearn.datasets import load_breast_cancer  # noqa: E402

from rendezvous.config import Deployment, Role, load_deployment  # noqa: E402
from rendezvous.isolation import frames  # noqa: E402
from rendezvous.isolation.child import ChildWorker  # noqa: E402
from rendezvous.isolation.host import HANDOVER_MS  # noqa: E402
from rendezvous.messages import Request, Score  # noqa: E402
from rendezvous.models import load_model  # noqa: E402
from rendezvous.models.base import Model  # noqa: E402
from rendezvous.runner import matrix_of  # noqa: E402

Settle = Callable[[], Awaitable[None]]  # until a variant's work is done (its archive written)


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of the process
    return usage.ru_utime + usage.ru_stime


def work_frames(deployment: str, n_frames: int, batch: int, start: int) -> list[bytes]:
    """Encoded ``Work`` frames of breast_cancer rows, as the serving process sends them."""
    x = load_breast_cancer().data
    encoder = msgspec.msgpack.Encoder()
    out = []
    for k in range(n_frames):
        ids = range(start + k * batch, start + (k + 1) * batch)
        requests = [
            Request(f"bench-{deployment}-{i}", deployment, x[i % len(x)].tolist(), time.time(), "c")
            for i in ids
        ]
        out.append(encoder.encode(frames.Work(requests)))
    return out


def direct(dep: Deployment, models: list[Model]) -> Callable[[frames.Work], None]:
    """The baseline: a frame's whole work, batch-wise, with nothing in between."""
    encoder = msgspec.msgpack.Encoder()

    def handle(work: frames.Work) -> None:
        requests = work.requests
        rows = matrix_of(requests)
        scores: list[Score] = []
        calls = []
        for model in models:
            t0 = time.perf_counter()
            out = model.predict(rows)
            latency = (time.perf_counter() - t0) * 1000.0
            now = time.time()
            probs = out.probabilities
            for i, r in enumerate(requests):
                prob = probs[i] if probs is not None else None
                queue_ms = (now - r.received_at) * 1000.0
                scores.append(Score(r.id, dep.name, model.name, model.version,
                                    out.predictions[i], prob, None, latency, queue_ms,
                                    len(requests), r.reply_to, now))  # fmt: skip
            calls.append(frames.Call(model.name, [r.id for r in requests], len(requests), latency))
        frames.encode(frames.Scores(calls, encoder.encode(scores)))

    return handle


async def measure(
    handle: Callable[[frames.Work], None],
    blobs: list[bytes],
    settle: Settle,
    window: float,
) -> float:
    """CPU µs per request for ``blobs`` arriving one per window."""
    decoder = frames.decoder_to_child()
    n = 0
    before = cpu()
    for blob in blobs:
        work = decoder.decode(blob)
        assert isinstance(work, frames.Work)
        handle(work)
        n += len(work.requests)
        await asyncio.sleep(window)
    await asyncio.sleep(0.1)
    await settle()
    return (cpu() - before) * 1e6 / n


def encode_only(frame: frames.ToParent) -> None:
    """The worker's frames to the parent: encoded as for the pipe, then dropped."""
    frames.encode(frame)


async def child(dep: Deployment, models: list[Model], archive: bool, tmp: Path) -> ChildWorker:
    specs = [
        frames.ModelSpec(m.name, dep.model(m.name).batch.model_dump(),
                         dep.model(m.name).queue_size, None)
        for m in models
    ]  # fmt: skip
    url = f"sqlite:///{tmp / 'archive.db'}" if archive else None
    init = frames.Init(dep.name, url, str(tmp), dep.archive_buffer, specs)
    worker = ChildWorker(init, encode_only)
    await worker.start()
    for model in models:
        await worker.install(frames.Install(model.name, pickle.dumps(model, 5)))
    return worker


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        _, _, shadows, _ = build(tmp)
        dep = load_deployment(shadows)
        sync_models: list[Model] = []
        for cfg in dep.models:
            model = load_model(cfg, dep)
            if cfg.role != Role.CHAMPION and isinstance(model, Model):
                sync_models.append(model)
        plain = await child(dep, sync_models, False, tmp)
        archived = await child(dep, sync_models, True, tmp)

        async def flushed() -> None:
            await archived.flush()  # what was scored is written

        async def nothing() -> None:
            return None

        variants: dict[str, tuple[Callable[[frames.Work], None], Settle]] = {
            "direct": (direct(dep, sync_models), nothing),
            "child": (plain.work, nothing),
            "+archive": (archived.work, flushed),
        }
        figures: dict[str, list[float]] = {name: [] for name in variants}
        window = args.window_ms / 1000.0
        batch = max(1, round(args.rate * window))
        n_frames = max(1, round(args.seconds / window))
        start = 0
        for handle, settle in variants.values():  # warm-up: inline policies settle
            await measure(handle, work_frames(dep.name, 100, batch, start), settle, 0.0)
            start += 100 * batch
        for k in range(args.rounds):
            for name, (handle, settle) in variants.items():
                blobs = work_frames(dep.name, n_frames, batch, start)
                start += n_frames * batch
                figures[name].append(await measure(handle, blobs, settle, window))
            print(f"round {k}: " + ", ".join(f"{n} {v[-1]:.1f}" for n, v in figures.items()))
        await plain.stop()
        await archived.stop()
    base = statistics.median(figures["direct"])
    print(
        f"\nCPU per request at {args.rate:.0f}/s, a frame of {batch} every {args.window_ms} ms,"
        f" median of {args.rounds} rounds:"
    )
    for name, values in figures.items():
        value = statistics.median(values)
        print(f"  {name:<9} {value:6.1f} µs  {value / base:5.2f}x direct")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rate", type=float, default=3400.0, help="requests per second")
    parser.add_argument("--window-ms", type=float, default=HANDOVER_MS, help="the hand-over window")
    parser.add_argument("--seconds", type=float, default=3.0, help="per variant and round")
    parser.add_argument("--rounds", type=int, default=5)
    try:
        import uvloop  # what the model process runs on

        uvloop.run(run(parser.parse_args()))
    except ImportError:
        asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
