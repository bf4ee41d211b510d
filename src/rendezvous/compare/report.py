"""The comparison of a deployment's models over a window: one call, one frozen report.

``compare(archive, deployment, Window(last=1000))`` reads the window's requests, every
compared model's scores and the labels once, and computes per model its operations, its
quality against the labels, its agreement with the champion and, given a
:class:`~.stats.PromotionPolicy`, a promotion decision. ``to_dict()`` is the JSON the API
returns; :func:`render` draws it as tables for a terminal.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.table import Table

from ..archive.base import Archive
from ..config import Deployment
from ..errors import InputError
from .differencing import Agreement, agreement
from .joined import Joined, ModelRef, join
from .labelled import Quality, quality
from .operations import Operations, operations, outcomes
from .stats import Decision, Pair, PromotionPolicy, evaluate
from .task import TaskKind, resolve_task
from .window import Window

__all__ = ["Comparison", "ModelReport", "compare", "pairs", "render"]

REPLAYED = "replayed"  # the role of a compared model the deployment does not run


@dataclass(frozen=True, slots=True)
class ModelReport:
    model: str  # name, or name@version when one version was asked for
    role: str
    operations: Operations
    quality: Quality | None  # None without labels in the window
    agreement: Agreement | None  # None for the champion itself
    decision: Decision | None  # None for the champion, or without a policy


@dataclass(frozen=True, slots=True)
class Comparison:
    deployment: str
    champion: str
    window: Window
    requests: int
    labelled: int
    first_at: float | None  # receipt of the window's oldest and newest requests
    last_at: float | None
    task: TaskKind
    classes: tuple[Any, ...]
    positive: Any
    outcomes: Mapping[str, int]
    models: tuple[ModelReport, ...]
    policy: PromotionPolicy | None = None

    def model(self, name: str) -> ModelReport:
        for report in self.models:
            if report.model == name:
                return report
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = _plain(dataclasses.asdict(self))
        out["window"] = self.window.to_dict()
        return out


def compare(
    archive: Archive,
    deployment: Deployment,
    window: Window,
    *,
    models: Sequence[str] | None = None,
    classes: Mapping[str, Sequence[Any]] | None = None,
    task: TaskKind | None = None,
    positive: Any = None,
    large_diff: float | None = None,
    top_k: int = 10,
    policy: PromotionPolicy | None = None,
    champion_name: str | None = None,
    clock: Callable[[], float] = time.time,
) -> Comparison:
    """Compare the deployment's models (or ``models``) with its champion over ``window``.

    ``models`` names the models to set against the champion, ``name`` or ``name@version``,
    and may name models the deployment does not run (scores written by a replay). By
    default: every model of the deployment that computes. ``classes`` maps model names to
    the classes of their probability columns (a loaded model's ``info.classes``).
    ``champion_name`` is the model compared against (default: the file's champion; a running
    deployment passes the current one, which promotions change).
    """
    if top_k < 0:
        raise InputError(f"expected 0 or more, got {top_k}", loc="top_k")
    if large_diff is not None and not 0 <= large_diff < math.inf:
        raise InputError(f"expected a finite number >= 0, got {large_diff}", loc="large_diff")
    champion = ModelRef(champion_name or deployment.champion.name)
    if models is None:
        names = [m.name for m in deployment.models if m.computes and m.name != champion.name]
    else:
        names = list(dict.fromkeys(models))
    refs = [ModelRef.parse(n) for n in names]
    refs = [r for r in refs if r != champion]
    for ref in refs:
        if not ref.name:
            raise InputError(f"expected a model name, got {str(ref)!r}", loc="models")

    records = window.requests(archive, deployment.name, clock=clock)
    joined = join(archive, deployment.name, champion, refs, records)
    resolved = resolve_task(joined, kind=task, classes=classes, positive=positive)
    roles = {m.name: str(m.role) for m in deployment.models}
    if champion.name != deployment.champion.name:  # after a promotion
        roles[deployment.champion.name] = "challenger"
        roles[champion.name] = "champion"

    reports = []
    for key in joined.models:
        is_champion = key == joined.champion
        decision = None
        if policy is not None and not is_champion:
            decision = evaluate(policy, pairs(joined, key))
        reports.append(
            ModelReport(
                model=key,
                role=roles.get(key.partition("@")[0], REPLAYED),
                operations=operations(joined, key),
                quality=quality(joined, resolved, key) if joined.labels else None,
                agreement=None
                if is_champion
                else agreement(joined, resolved, key, large_diff=large_diff, top_k=top_k),
                decision=decision,
            )
        )
    return Comparison(
        deployment=deployment.name,
        champion=joined.champion,
        window=window,
        requests=len(records),
        labelled=len(joined.labels),
        first_at=records[0].received_at if records else None,
        last_at=records[-1].received_at if records else None,
        task=resolved.kind,
        classes=resolved.classes,
        positive=resolved.positive,
        outcomes=outcomes(joined),
        models=tuple(reports),
        policy=policy,
    )


def pairs(joined: Joined, challenger: str) -> list[Pair]:
    """The labelled requests both the champion and ``challenger`` answered well."""
    out = []
    for request in joined.requests:
        if request.id not in joined.labels:
            continue
        ours, theirs = joined.ok(joined.champion, request.id), joined.ok(challenger, request.id)
        if ours is not None and theirs is not None:
            out.append(Pair(joined.labels[request.id], ours.prediction, theirs.prediction))
    return out


def _plain(value: Any) -> Any:
    # asdict leaves tuples and mappings as they are; JSON wants lists and str-keyed dicts.
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


# -- rendering ------------------------------------------------------------------------------


def render(comparison: Comparison) -> list[Table]:
    """Tables for a terminal: operations, quality (with labels), agreement, promotion."""
    c = comparison
    span = f"{c.requests} requests, {c.labelled} labelled"
    ops = Table(title=f"{c.deployment}: operations ({span})")
    for col in ("model", "role", "served", "fallback", "errors", "timeouts", "p50 ms", "p99 ms"):
        ops.add_column(col, justify="left" if col in ("model", "role") else "right")
    for r in c.models:
        o = r.operations
        ops.add_row(
            r.model, r.role, str(o.served), _pct(o.fallback_rate), _pct(o.error_rate),
            _pct(o.timeout_rate), _ms(o.p50_ms), _ms(o.p99_ms),
        )  # fmt: skip
    tables = [ops]

    if any(r.quality is not None for r in c.models):
        columns: tuple[str, ...] = ("accuracy", "f1", "roc_auc", "log_loss")
        if c.task == "regression":
            columns = ("mae", "rmse")
        qual = Table(title=f"{c.deployment}: quality against labels ({c.task})")
        qual.add_column("model")
        qual.add_column("n", justify="right")
        for col in columns:
            qual.add_column(col, justify="right")
        for r in c.models:
            if r.quality is not None:
                values = [_num(getattr(r.quality, col), 4) for col in columns]
                qual.add_row(r.model, str(r.quality.n), *values)
        tables.append(qual)

    agree = Table(title=f"{c.deployment}: agreement with the champion {c.champion}")
    for col in ("model", "n", "agree", "on", "mean |diff|", "p10/p50/p90", "large", "top"):
        agree.add_column(col, justify="left" if col in ("model", "on", "top") else "right")
    for r in c.models:
        a = r.agreement
        if a is None:
            continue
        q = a.model_quantiles
        quant = "-" if q is None else f"{q.p10:.3g}/{q.p50:.3g}/{q.p90:.3g}"
        agree.add_row(
            r.model, str(a.n), _pct(a.agreement), a.on or "-", _num(a.mean_abs_diff, 4),
            quant, _pct(a.large_share), ", ".join(a.top_disagreements[:3]) or "-",
        )  # fmt: skip
    tables.append(agree)

    if c.policy is not None:
        p = c.policy
        promo = Table(title=f"promotion: {p.metric}, alpha {p.alpha}, min {p.min_pairs} pairs")
        for col in ("model", "promote", "n", "champion", "challenger", "p-value", "reason"):
            promo.add_column(col)
        for r in c.models:
            d = r.decision
            if d is not None:
                promo.add_row(
                    r.model, "yes" if d.promote else "no", str(d.n),
                    _num(d.champion_metric, 4), _num(d.challenger_metric, 4),
                    _num(d.p_value, 3), d.reason,
                )  # fmt: skip
        tables.append(promo)
    return tables


def _num(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def _ms(value: float | None) -> str:
    # Fixed decimals, not significant digits: a 12.3 ms p99 must not print as "1e+01".
    return "-" if value is None else f"{value:.2f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"
