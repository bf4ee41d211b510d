"""Promotion and rollback: in one process, across processes sharing an archive, by policy."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from rendezvous.archive import MemoryArchive
from rendezvous.archive.base import Event
from rendezvous.auto_promotion import CHECK, PromotionWatcher, spent_alpha
from rendezvous.config import Deployment, PromotionConfig
from rendezvous.errors import ArchiveError, ConfigError, Conflict, InputError, NotFound
from rendezvous.feedback import record_feedback
from rendezvous.promotion import (
    EventFollower,
    apply,
    champions,
    current_champion,
    promote,
    record_promotion,
    rollback,
)
from rendezvous.runtime import DeploymentRuntime
from rendezvous.service import Rendezvous
from support import deployment, py

FAST = 0.02  # follower interval: a few of them is still well under a second


def models(*extra: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        py("champ", "sign", "champion"),
        py("chal", "negated"),
        py("other", "sign"),
        py("canary", "sign", "canary"),
        {"name": "decoy", "kind": "decoy", "role": "decoy"},
        py("arm", "negated", "split", share=0.1),
        *extra,
    ]


@pytest.fixture(params=["memory", "sqlite"])
def archive_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory" if request.param == "memory" else f"sqlite:///{tmp_path / 'shared.db'}"


@pytest.fixture
async def services() -> AsyncIterator[Callable[..., Any]]:
    """``rv = await services(dep)``: a started service (an API process), stopped after."""
    started: list[Rendezvous] = []

    async def make(dep: Deployment, **kw: Any) -> Rendezvous:
        rv = Rendezvous([dep], follow_interval=FAST, **kw)
        await rv.start()
        started.append(rv)
        return rv

    yield make
    for rv in started:
        await rv.stop()


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not within the timeout"
        await asyncio.sleep(FAST / 2)


# -- by hand, in one process ------------------------------------------------------------------


async def test_promote_then_rollback_in_process(
    services: Callable[..., Any], archive_url: str
) -> None:
    rv = await services(deployment(models(), archive=archive_url))
    runtime = rv.get("dep")
    assert runtime.champion_name == "champ"

    event = await promote(runtime, "chal", evidence={"ticket": "OPS-1"})

    assert (event.kind, event.model, event.deployment) == ("promote", "chal", "dep")
    assert event.detail == {"previous": "champ", "evidence": {"ticket": "OPS-1"}, "by": "admin"}
    assert event.origin == runtime.instance
    assert event.seq > 0
    assert runtime.champion_name == "chal"
    # Every answer now comes from the new champion, as the champion; the old one is a fallback.
    assert await answers_from_unsplit(runtime) == {("chal", "champion")}
    assert runtime.collector.schedule[1].model == "champ"
    assert {m["name"]: m["role"] for m in runtime.describe()["models"]}["champ"] == "challenger"

    back = await rollback(runtime)

    assert (back.kind, back.model) == ("rollback", "champ")
    assert back.detail == {"previous": "chal", "undoes": event.seq, "by": "admin"}
    assert runtime.champion_name == "champ"
    assert await answers_from_unsplit(runtime) == {("champ", "champion")}
    assert runtime.archive.events("dep") == [event, back]


async def answers_from_unsplit(runtime: DeploymentRuntime) -> set[tuple[str | None, str]]:
    """Answers to rows the split arm does not take (its share goes by request id)."""
    got = await runtime.predict([[1.0, 0.0]] * 40)
    return {(a.model, a.reason) for a in got if not a.reason.startswith("split:")}


async def test_rollback_walks_back_through_the_promotions(services: Callable[..., Any]) -> None:
    runtime = (await services(deployment(models()))).get("dep")
    await promote(runtime, "chal")
    await promote(runtime, "other")
    await promote(runtime, "other")  # promoting the champion is harmless: nothing to undo

    assert (await rollback(runtime)).model == "chal"
    assert (await rollback(runtime)).model == "champ"
    with pytest.raises(Conflict, match="nothing to roll back"):
        await rollback(runtime)
    assert runtime.champion_name == "champ"
    # The file's champion can be promoted back like any challenger, and demoted again.
    await promote(runtime, "chal")
    assert (await promote(runtime, "champ")).detail["previous"] == "chal"
    assert (await rollback(runtime)).model == "chal"


async def test_nothing_to_roll_back_is_a_conflict(services: Callable[..., Any]) -> None:
    runtime = (await services(deployment(models()))).get("dep")
    with pytest.raises(Conflict, match="nothing to roll back") as caught:
        await rollback(runtime)
    assert caught.value.status == 409
    assert runtime.archive.events("dep") == []


@pytest.mark.parametrize("model", ["canary", "decoy", "arm"])
async def test_only_a_challenger_can_be_promoted(services: Callable[..., Any], model: str) -> None:
    runtime = (await services(deployment(models()))).get("dep")
    with pytest.raises(InputError, match="only a challenger can be promoted") as caught:
        await promote(runtime, model)
    assert caught.value.loc == "model"
    with pytest.raises(NotFound, match="no model 'nope'"):
        await promote(runtime, "nope")
    assert runtime.champion_name == "champ"
    assert runtime.archive.events("dep") == []  # nothing recorded


# -- across processes ---------------------------------------------------------------------------


async def test_a_promotion_reaches_every_process_on_the_archive(
    services: Callable[..., Any], tmp_path: Path
) -> None:
    dep = deployment(models(), archive=f"sqlite:///{tmp_path / 'shared.db'}")
    one, two = (await services(dep)).get("dep"), (await services(dep)).get("dep")
    assert one.instance != two.instance

    event = await promote(one, "chal")
    assert one.champion_name == "chal"  # at once here
    await eventually(lambda: two.champion_name == "chal")  # a few polls there
    assert await answers_from_unsplit(two) == {("chal", "champion")}

    # A process started afterwards serves the promoted champion from its first request.
    three = (await services(dep)).get("dep")
    assert three.champion_name == "chal"

    back = await rollback(two)
    assert back.detail["undoes"] == event.seq
    await eventually(lambda: one.champion_name == three.champion_name == "champ")
    assert await answers_from_unsplit(one) == {("champ", "champion")}


async def test_a_follower_applies_only_what_is_newer(tmp_path: Path) -> None:
    dep = deployment(models(), archive=f"sqlite:///{tmp_path / 'a.db'}")
    async with Rendezvous([dep], follow_interval=3600) as rv:  # polls only when asked
        runtime = rv.get("dep")
        follower = EventFollower(runtime, interval=3600)
        archive = runtime.archive

        def record(model: str) -> Event:
            return record_promotion(archive, dep, model, origin="elsewhere")

        first, second = record("chal"), record("other")
        assert await follower.poll()
        assert runtime.champion_name == "other"  # the latest decides
        assert not apply(runtime, first)  # older than what was applied: skipped
        assert runtime.champion_name == "other"
        assert not await follower.poll()  # nothing new
        assert second.seq > first.seq


async def test_an_event_naming_a_model_the_file_no_longer_allows_is_skipped(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    before = deployment(models(py("gone", "sign")), archive=url)
    async with Rendezvous([before]) as rv:
        await promote(rv.get("dep"), "gone")
    # The file changed: "gone" is no longer there. The file's champion keeps serving.
    async with Rendezvous([deployment(models(), archive=url)]) as rv:
        assert rv.get("dep").champion_name == "champ"


async def test_a_follower_survives_an_archive_that_fails_for_a_while(
    services: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = (await services(deployment(models()))).get("dep")
    archive = runtime.archive
    assert isinstance(archive, MemoryArchive)
    calls = 0
    real = archive.events

    def flaky(*args: Any, **kw: Any) -> list[Event]:
        nonlocal calls
        calls += 1
        if calls <= 3:
            raise ArchiveError("database is restarting")
        return real(*args, **kw)

    monkeypatch.setattr(archive, "events", flaky)
    archive.record_event(Event("dep", "promote", "chal", {}, time.time(), "elsewhere"))
    await eventually(lambda: runtime.champion_name == "chal")
    assert calls > 3


# -- the history ------------------------------------------------------------------------------


def ev(seq: int, kind: str, model: str, **detail: Any) -> Event:
    return Event("dep", kind, model, detail, 0.0, "x", seq)


def test_champions_replays_promotions_and_rollbacks() -> None:
    dep = deployment(models())
    names = lambda events: [m for m, _ in champions(dep, events)]  # noqa: E731
    assert names([]) == ["champ"]
    assert names([ev(1, "promote", "chal"), ev(2, "promote", "other")]) == [
        "champ",
        "chal",
        "other",
    ]
    assert names([ev(1, "promote", "chal"), ev(2, "rollback", "champ", undoes=1)]) == ["champ"]
    # Two rollbacks of one promotion (two admins at once) undo it once.
    twice = [
        ev(1, "promote", "chal"),
        ev(2, "promote", "other"),
        ev(3, "rollback", "chal", undoes=2),
        ev(4, "rollback", "chal", undoes=2),
    ]
    assert names(twice) == ["champ", "chal"]
    # A promotion racing a rollback of an earlier one: the rollback wins, its model serves.
    raced = [
        ev(1, "promote", "chal"),
        ev(2, "promote", "other"),
        ev(3, "rollback", "champ", undoes=1),
    ]
    assert names(raced) == ["champ"]
    # Other kinds of events do not count.
    assert names([ev(1, "drift", "chal"), ev(2, CHECK, "chal")]) == ["champ"]


def test_current_champion_reads_the_archive() -> None:
    dep = deployment(models())
    archive = MemoryArchive()
    assert current_champion(archive, dep) == "champ"
    record_promotion(archive, dep, "chal", origin="cli")
    assert current_champion(archive, dep) == "chal"


# -- by policy ---------------------------------------------------------------------------------


def policy(**over: Any) -> dict[str, Any]:
    return {"metric": "accuracy", "min_pairs": 60, "check_every_s": 3600, **over}


async def labelled_traffic(runtime: DeploymentRuntime, n: int, rng: random.Random) -> None:
    """``n`` requests whose labels (the sign of ``a``) come back as feedback."""
    rows = [[rng.uniform(-1, 1), rng.random()] for _ in range(n)]
    got = await runtime.predict(rows)
    await settle(runtime)
    runtime.archive.flush()  # every model's score, before it is compared
    await record_feedback(
        runtime, [(a.request_id, 1 if row[0] > 0 else 0) for a, row in zip(got, rows, strict=True)]
    )


async def settle(runtime: DeploymentRuntime, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not runtime.idle:
        assert time.monotonic() < deadline, "executors did not drain"
        await asyncio.sleep(0.01)


def promotion_deployment(
    champion: str, *challengers: tuple[str, str], archive: str = "memory", **over: Any
) -> Deployment:
    return deployment(
        [py("champ", champion, "champion"), *(py(n, fn) for n, fn in challengers)],
        archive=archive,
        promotion=policy(**over),
    )


async def test_the_policy_promotes_a_better_challenger_with_its_evidence(
    services: Callable[..., Any],
) -> None:
    dep = promotion_deployment("sign_but_wrong_when_b_high", ("good", "sign"), ("bad", "negated"))
    runtime = (await services(dep)).get("dep")
    watcher = PromotionWatcher(runtime, PromotionConfig(**policy()))
    rng = random.Random(7)

    await labelled_traffic(runtime, 40, rng)
    assert await watcher.check() is None  # too few labels: no test, nothing spent
    assert runtime.archive.events("dep") == []

    await labelled_traffic(runtime, 60, rng)
    event = await watcher.check()

    assert event is not None
    assert (event.kind, event.model) == ("promote", "good")
    assert runtime.champion_name == "good"
    detail = event.detail
    assert (detail["by"], detail["previous"]) == ("policy", "champ")
    evidence = detail["evidence"]
    assert evidence["metric"] == "accuracy"
    assert evidence["n"] >= 60
    assert evidence["challenger_metric"] == 1.0
    assert evidence["champion_metric"] < 0.9
    assert evidence["p_value"] < evidence["alpha"]
    assert evidence["alpha"] == pytest.approx(spent_alpha(0.05, 1) / 2)  # two challengers
    assert evidence["test"].startswith("mcnemar")
    assert evidence["check"] == 1
    assert evidence["window"]["since"] <= evidence["window"]["until"]
    # The next answers come from the promoted model, as the champion.
    assert {(a.model, a.reason) for a in await runtime.predict([[0.5, 0.9]] * 3)} == {
        ("good", "champion")
    }
    # Against the new champion nobody is better: the next test records a check, no promotion.
    await labelled_traffic(runtime, 70, rng)
    check = await watcher.check()
    assert check is not None and check.kind == CHECK
    assert runtime.champion_name == "good"


async def test_the_policy_never_promotes_a_worse_challenger(services: Callable[..., Any]) -> None:
    dep = promotion_deployment("sign", ("bad", "negated"), ("worse", "sign_but_wrong_when_b_high"))
    runtime = (await services(dep)).get("dep")
    watcher = PromotionWatcher(runtime, PromotionConfig(**policy()))
    rng = random.Random(11)

    checks: list[Event] = []
    for _ in range(4):
        await labelled_traffic(runtime, 65, rng)
        event = await watcher.check()
        assert event is not None and event.kind == CHECK
        checks.append(event)
        assert await watcher.check() is None  # that window is used up: nothing fresh to test

    assert runtime.champion_name == "champ"
    assert [c.detail["check"] for c in checks] == [1, 2, 3, 4]
    # Alpha is spent, never reset: each test runs at a lower level than the one before.
    levels = [c.detail["alpha"] for c in checks]
    assert levels == sorted(levels, reverse=True)
    assert sum(levels) * 2 < 0.05
    # Fresh windows: no request is in two tests.
    windows = [c.detail["window"] for c in checks]
    for before, after in itertools.pairwise(windows):
        assert after["since"] > before["until"]
    assert set(checks[0].detail["decisions"]) == {"bad", "worse"}
    assert checks[0].detail["decisions"]["bad"]["p_value"] > 0.5


async def test_the_tests_so_far_survive_a_restart(
    services: Callable[..., Any], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    dep = promotion_deployment("sign", ("bad", "negated"), archive=url)
    runtime = (await services(dep)).get("dep")
    rng = random.Random(3)
    await labelled_traffic(runtime, 65, rng)
    first = await PromotionWatcher(runtime, PromotionConfig(**policy())).check()
    assert first is not None and first.detail["check"] == 1

    again = PromotionWatcher(runtime, PromotionConfig(**policy()))  # as after a restart
    assert await again.check() is None  # the window the first test used is not reused
    await labelled_traffic(runtime, 65, rng)
    second = await again.check()
    assert second is not None and second.detail["check"] == 2


async def test_a_promotion_by_hand_starts_a_new_reign(services: Callable[..., Any]) -> None:
    dep = promotion_deployment("sign", ("bad", "negated"), ("same", "sign"))
    runtime = (await services(dep)).get("dep")
    watcher = PromotionWatcher(runtime, PromotionConfig(**policy()))
    rng = random.Random(5)
    await labelled_traffic(runtime, 65, rng)
    assert (await watcher.check()) is not None

    await promote(runtime, "same")
    assert await watcher.check() is None  # requests before the promotion are not fresh
    await labelled_traffic(runtime, 65, rng)
    check = await watcher.check()
    assert check is not None
    assert check.detail["check"] == 1 and check.detail["champion"] == "same"


async def test_the_service_runs_the_policy_in_the_background(
    services: Callable[..., Any],
) -> None:
    dep = promotion_deployment("sign_but_wrong_when_b_high", ("good", "sign"), check_every_s=0.05)
    runtime = (await services(dep)).get("dep")
    await labelled_traffic(runtime, 100, random.Random(1))
    await eventually(lambda: runtime.champion_name == "good")
    (event,) = runtime.archive.events("dep", kinds=["promote"])
    assert event.detail["by"] == "policy"


async def test_no_policy_no_watcher(services: Callable[..., Any]) -> None:
    rv = await services(deployment(models()))
    assert [type(loop).__name__ for loop in rv._loops] == ["EventFollower"]


# -- the deployment file's option ------------------------------------------------------------


def test_the_policy_is_off_unless_the_file_asks() -> None:
    assert deployment(models()).promotion is None
    dep = deployment(models(), promotion={"metric": "mae"})
    assert dep.promotion == PromotionConfig(
        metric="mae", min_pairs=200, alpha=0.05, check_every_s=60, window=5000
    )


@pytest.mark.parametrize(
    ("block", "loc"),
    [
        ({"metric": "f1"}, "promotion.metric"),
        ({}, "promotion.metric"),
        ({"metric": "accuracy", "alpha": 1.5}, "promotion.alpha"),
        ({"metric": "accuracy", "min_pairs": 0}, "promotion.min_pairs"),
        ({"metric": "accuracy", "check_every_s": 0}, "promotion.check_every_s"),
        ({"metric": "accuracy", "window": 0}, "promotion.window"),
        ({"metric": "accuracy", "every": 5}, "promotion.every"),
    ],
)
def test_a_bad_policy_names_its_field(block: dict[str, Any], loc: str) -> None:
    with pytest.raises(ConfigError) as caught:
        deployment(models(), promotion=block)
    assert [p.loc for p in caught.value.problems] == [loc]


def test_alpha_spending_sums_to_alpha() -> None:
    assert sum(spent_alpha(0.05, k) for k in range(1, 100_000)) == pytest.approx(0.05, rel=1e-4)
    assert spent_alpha(0.05, 1) > spent_alpha(0.05, 2) > spent_alpha(0.05, 3)
