"""In-process continuous learning: predict latency, and accuracy under concept drift.

1. Latency of one-row ``Engine.predict`` for 10-feature linear, ridge and logistic models
   against scikit-learn's own single-row ``predict`` on the very same fitted estimator
   (registered as is, so both use the same coefficients), measured in this run: median,
   p99 and the ratio of medians. Then the engine again while its background learner keeps
   retraining another model, to show what sharing the GIL with training costs.
2. Prequential accuracy (predict each example, then learn it) on River's synthetic abrupt,
   gradual and incremental drift streams, for a logistic regression trained once before
   the drift (static), the Engine learning continuously (logistic kind, the
   ``frequent_updates`` preset), and River's HoeffdingAdaptiveTreeClassifier and
   ARFClassifier as references.

The Engine is stepped with ``process_pending`` after every example, as its background
thread would, so the accuracy figures are deterministic.

Run: ``.venv/bin/python benchmarks/learning_inprocess.py``
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from river import forest, tree
from river.datasets import synth
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge

from rendezvous.learning import Engine, LearningConfig

N_FEATURES = 10
ENGINE_CALLS = 50_000
SKLEARN_CALLS = 5_000
STREAM_LENGTH = 10_000
WARM_UP = 2_000  # the static model's training set; accuracy is counted after it
DRIFT_AT = 5_000


def _latencies(call: Callable[[], Any], n: int) -> list[int]:
    for _ in range(min(n, 1_000)):  # warm caches and allocators first
        call()
    clock = time.perf_counter_ns
    out = []
    for _ in range(n):
        t0 = clock()
        call()
        out.append(clock() - t0)
    return out


def _summary(ns: list[int]) -> tuple[float, float]:
    ordered = sorted(ns)
    return statistics.median(ordered) / 1e3, ordered[int(0.99 * len(ordered))] / 1e3


def latency() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2_000, N_FEATURES))
    y = x @ rng.normal(size=N_FEATURES) + 0.3 + rng.normal(scale=0.1, size=2_000)
    estimators = {
        "linear": LinearRegression().fit(x, y),
        "ridge": Ridge(alpha=1.0).fit(x, y),
        "logistic": LogisticRegression().fit(x, (y > 0).astype(int)),
    }
    engine = Engine(LearningConfig.manual())
    for name, estimator in estimators.items():
        engine.register_model(name, estimator)
    row = x[0].tolist()
    row_2d = x[:1]

    print("1. predict latency, one row of 10 features (µs)")
    header = f"{'model':<10}{'engine med':>11}{'p99':>8}{'sklearn med':>13}{'p99':>8}{'ratio':>8}"
    print(header)
    print("-" * len(header))
    for name, estimator in estimators.items():
        same = engine.predict(name, row).prediction == estimator.predict(row_2d)[0] or np.isclose(
            engine.predict(name, row).prediction, estimator.predict(row_2d)[0], rtol=1e-12
        )
        assert same, f"{name}: engine and scikit-learn disagree"
        ours = _summary(_latencies(lambda n=name: engine.predict(n, row), ENGINE_CALLS))
        theirs = _summary(_latencies(lambda e=estimator: e.predict(row_2d), SKLEARN_CALLS))
        print(
            f"{name:<10}{ours[0]:>11.2f}{ours[1]:>8.2f}{theirs[0]:>13.2f}{theirs[1]:>8.2f}"
            f"{theirs[0] / ours[0]:>7.0f}x"
        )

    # The same predictions while the background learner retrains a model non-stop.
    busy = Engine(LearningConfig(min_samples=100, interval_sec=None), poll_interval_sec=0.001)
    busy.register_model("linear", estimators["linear"])
    busy.register_model("trained", "ridge")
    stop = threading.Event()

    def feed() -> None:
        feed_rng = np.random.default_rng(1)
        while not stop.is_set():
            for features in feed_rng.normal(size=(100, N_FEATURES)).tolist():
                busy.add_training_example("trained", features, sum(features))
            time.sleep(0.001)

    producer = threading.Thread(target=feed)
    with busy:
        producer.start()
        time.sleep(0.2)
        ns = _latencies(lambda: busy.predict("linear", row), ENGINE_CALLS)
        stop.set()
        producer.join()
    loaded = _summary(ns)
    versions = busy.get_model_info("trained").version
    tail = sorted(ns)[int(0.999 * len(ns))] / 1e3
    print(
        f"{'linear*':<10}{loaded[0]:>11.2f}{loaded[1]:>8.2f}   * while the learner published "
        f"{versions} versions of another model;\n{'':<10}p99.9 {tail:.1f} µs, "
        f"max {max(ns) / 1e3:.0f} µs: a prediction that meets a GIL hand-over waits for it"
    )


def _rows(stream: Iterable[tuple[dict[Any, float], Any]]) -> list[tuple[list[float], Any]]:
    return [([float(v) for v in x.values()], y) for x, y in stream]


def _streams() -> dict[str, list[tuple[list[float], Any]]]:
    abrupt = synth.ConceptDriftStream(
        stream=synth.SEA(variant=2, noise=0.05, seed=1),
        drift_stream=synth.SEA(variant=3, noise=0.05, seed=2),
        position=DRIFT_AT,
        width=50,  # River overflows on narrower transitions this far in
        seed=1,
    )
    gradual = synth.ConceptDriftStream(
        stream=synth.SEA(variant=2, noise=0.05, seed=3),
        drift_stream=synth.SEA(variant=3, noise=0.05, seed=4),
        position=DRIFT_AT,
        width=3_000,
        seed=2,
    )
    incremental = synth.Hyperplane(
        seed=5, n_features=N_FEATURES, n_drift_features=5, mag_change=0.002, sigma=0.1
    )
    return {
        "abrupt (SEA 2→3, 50 wide)": _rows(abrupt.take(STREAM_LENGTH)),
        "gradual (SEA 2→3, 3000 wide)": _rows(gradual.take(STREAM_LENGTH)),
        "incremental (Hyperplane)": _rows(incremental.take(STREAM_LENGTH)),
    }


def _static(data: list[tuple[list[float], Any]]) -> list[bool]:
    x = np.asarray([row for row, _ in data[:WARM_UP]])
    model = LogisticRegression(max_iter=1_000).fit(x, [y for _, y in data[:WARM_UP]])
    rest = np.asarray([row for row, _ in data[WARM_UP:]])
    return [bool(p == y) for p, (_, y) in zip(model.predict(rest), data[WARM_UP:], strict=True)]


def _engine(data: list[tuple[list[float], Any]]) -> tuple[list[bool], str]:
    engine = Engine(LearningConfig.frequent_updates(interval_sec=None))
    engine.register_model("m", "logistic")
    right = []
    for i, (row, y) in enumerate(data):
        if i >= WARM_UP:
            right.append(engine.predict("m", row).prediction == y)
        engine.add_training_example("m", row, y)
        engine.process_pending()
    info = engine.get_model_info("m")
    return right, f"{info.version} versions, {len(info.drift_events)} drift alarms"


def _river(model: Any, data: list[tuple[list[float], Any]]) -> list[bool]:
    right = []
    for i, (row, y) in enumerate(data):
        x = dict(enumerate(row))
        if i >= WARM_UP:
            right.append(model.predict_one(x) == y)
        model.learn_one(x, y)
    return right


def accuracy() -> None:
    print()
    print(f"2. prequential accuracy after the first {WARM_UP} examples (after the drift)")
    columns = ("static", "engine", "HAT", "ARF")
    header = f"{'stream':<30}" + "".join(f"{c:>16}" for c in columns)
    print(header)
    print("-" * len(header))
    notes = []
    for name, data in _streams().items():
        engine_right, note = _engine(data)
        results = [
            _static(data),
            engine_right,
            _river(tree.HoeffdingAdaptiveTreeClassifier(seed=1), data),
            _river(forest.ARFClassifier(seed=1), data),
        ]
        cells = []
        for right in results:
            after = right[DRIFT_AT - WARM_UP :]
            cells.append(f"{np.mean(right):.3f} ({np.mean(after):.3f})")
        print(f"{name:<30}" + "".join(f"{c:>16}" for c in cells))
        notes.append(f"  engine on {name}: {note}")
    print("\n".join(notes))


if __name__ == "__main__":
    started = time.perf_counter()
    latency()
    accuracy()
    print(f"\n({time.perf_counter() - started:.0f} s)")
