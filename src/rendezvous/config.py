"""Deployment file (YAML or JSON) → validated, typed objects.

Every problem is reported at once, each with its field path (``models[2].source: file not
found: …``); unknown keys are errors, never silently ignored. Relative paths in the file
are resolved against the file's own directory.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .errors import ConfigError, Problem

__all__ = [
    "BatchConfig",
    "Deployment",
    "EnricherConfig",
    "FunctionEnricher",
    "GuardBlock",
    "InputSchema",
    "LearningBlock",
    "LookupEnricher",
    "ModelConfig",
    "ModelKind",
    "PromotionConfig",
    "Role",
    "ScheduleEntry",
    "WindowBlock",
    "load_deployment",
    "parse_deployment",
]


class Role(StrEnum):
    CHAMPION = "champion"
    CHALLENGER = "challenger"
    CANARY = "canary"
    DECOY = "decoy"
    SPLIT = "split"


class ModelKind(StrEnum):
    PYTHON = "python"
    SKLEARN = "sklearn"
    ONNX = "onnx"
    RIVER = "river"
    HTTP = "http"
    DECOY = "decoy"


# A challenger answers only when the champion did not, well inside a typical deadline;
# this much lingering turns one model call per request into one per batch under load.
SHADOW_LINGER_MS = 2.0

# Kinds whose ``source`` is a file on disk (the others take an import string or a URL).
FILE_KINDS = {ModelKind.SKLEARN, ModelKind.ONNX}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputSchema(_Strict):
    """The features every model receives, in order: by name, or just how many."""

    features: list[str] | None = None
    n_features: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_of(self) -> InputSchema:
        if (self.features is None) == (self.n_features is None):
            raise ValueError("give exactly one of 'features' (a list of names) or 'n_features'")
        if self.features is not None:
            if not self.features:
                raise ValueError("'features' must name at least one feature")
            if len(set(self.features)) != len(self.features):
                raise ValueError("'features' has duplicate names")
        return self

    @property
    def names(self) -> list[str]:
        """Feature names; positional schemas get ``x0, x1, …``."""
        if self.features is not None:
            return list(self.features)
        return [f"x{i}" for i in range(self.n_features or 0)]

    @property
    def width(self) -> int:
        return len(self.features) if self.features is not None else (self.n_features or 0)


class BatchConfig(_Strict):
    """Adaptive micro-batching: whatever queued while the model was busy forms the next batch.

    ``max_wait_ms`` lets a batch that already has company wait a little for more; a lone
    request is never held back for it. ``linger_ms`` is for models whose answer nobody
    waits for first (challengers, canaries): they wait that long for company even when
    alone, so they compute in batches and leave the CPU to the champion. Unset, it is 0 for
    the champion and ``SHADOW_LINGER_MS`` for the others.
    """

    max_size: int = Field(default=64, ge=1, le=65536)
    max_wait_ms: float = Field(default=0.0, ge=0, le=1000)
    linger_ms: float | None = Field(default=None, ge=0, le=1000)


# Kinds a learner can retrain: refit a scikit-learn estimator, or keep a River one learning.
LEARNING_KINDS = {ModelKind.SKLEARN, ModelKind.RIVER}


class WindowBlock(_Strict):
    """Which labelled examples a retraining learns from (see ``learning/window.py``):
    the last ``size`` (``sliding``), those since the last drift alarm, at most ``size``
    (``since_drift``), or every one (``all``, unbounded)."""

    policy: Literal["sliding", "since_drift", "all"] = "sliding"
    size: int = Field(default=10_000, ge=1)


class GuardBlock(_Strict):
    """Roll a new version back when, over its first ``min_samples`` labelled examples, its
    live error exceeds the error the version it replaced makes on those same examples by
    more than ``max_error_increase`` (relative: 0.2 = 20% higher)."""

    max_error_increase: float = Field(ge=0)
    min_samples: int = Field(default=100, ge=1)


class LearningBlock(_Strict):
    """Continuous learning of one model, run by the deployment's learner process.

    Triggers (``None`` turns one off): ``min_samples`` new labelled examples since the last
    training; ``interval_s`` seconds since the last training when new examples arrived; a
    drift of the model's live error found by the ``drift`` detector, retrained on
    ``drift_min_samples`` examples after the alarm when ``retrain_on_drift``; and
    ``POST /v1/deployments/{name}/train``. A candidate is validated on the ``holdout``
    share of recent examples (never trained on) and published when its loss is not worse
    than the serving version's by more than ``tolerance``. With a ``drift`` detector, each
    feature's inputs are also tested against the serving version's training inputs (data
    drift: recorded, never a retrain by itself). ``guard`` rolls back a new version that
    does worse live than the one it replaced.
    """

    min_samples: int | None = Field(default=100, ge=1)
    interval_s: float | None = Field(default=None, gt=0)
    drift: Literal["adwin", "page_hinkley", "hddm_a", "ddm"] | None = "adwin"
    retrain_on_drift: bool = True
    drift_min_samples: int = Field(default=30, ge=1)
    window: WindowBlock = WindowBlock()
    holdout: float = Field(default=0.2, ge=0, lt=1)
    tolerance: float = Field(default=0.0, ge=0)
    guard: GuardBlock | None = None


class ModelConfig(_Strict):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", max_length=128)]
    kind: ModelKind
    role: Role = Role.CHALLENGER
    source: str | None = None
    version: str | None = None
    batch: BatchConfig = BatchConfig()
    queue_size: int = Field(default=1000, ge=1)
    # role split: the share of requests this model answers (A/B test, canary release)
    share: float | None = Field(default=None, gt=0, le=1)
    # Where a synchronous model's calls run: ``true`` on the event loop, ``false`` on the
    # model's own thread, unset on the loop while its calls prove fast (see inline.py) —
    # except shadows in a process that answers users, which stay on their thread.
    inline: bool | None = None
    # Where a synchronous shadow computes: ``process`` is the deployment's model process (a
    # GIL of its own, idle CPU priority: it never delays the champion), ``thread`` a thread
    # of the serving process. Unset: ``process`` for challengers and canaries of a memory
    # bus deployment; a model that answers users (champion, split) always computes here.
    isolation: Literal["process", "thread"] | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    # continuous learning of this model by the deployment's learner (sklearn and river)
    learning: LearningBlock | None = None

    @field_validator("learning")
    @classmethod
    def _learning_fits_kind(
        cls, v: LearningBlock | None, info: ValidationInfo
    ) -> LearningBlock | None:
        kind = info.data.get("kind")
        if v is not None and kind is not None and kind not in LEARNING_KINDS:
            raise ValueError(f"only sklearn and river models can learn, not kind '{kind}'")
        return v

    @field_validator("isolation")
    @classmethod
    def _isolation_fits(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v != "process":
            return v
        role, kind = info.data.get("role"), info.data.get("kind")
        if role in (Role.CHAMPION, Role.SPLIT):
            raise ValueError(
                f"'process' is for shadows, but a {role} answers users and computes in the "
                "serving process"
            )
        if info.data.get("inline") or kind is ModelKind.HTTP:
            what = "an inline model" if info.data.get("inline") else "an http model (it waits)"
            raise ValueError(f"'process' does not fit {what}")
        return v

    @field_validator("source")
    @classmethod
    def _source_fits_kind(cls, v: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("kind")
        if v is None or kind is None or kind is ModelKind.DECOY:
            return v  # a decoy's source is refused below, with the role in view
        if kind in FILE_KINDS:
            path = resolve_path(v, info)
            if not path.is_file():
                raise ValueError(f"file not found: {path}")
        if kind is ModelKind.HTTP and not v.startswith(("http://", "https://")):
            raise ValueError("an http model's source is a URL starting with http(s)://")
        if kind is ModelKind.PYTHON and ":" not in v:
            raise ValueError("expected an import string 'package.module:attribute'")
        return v

    @model_validator(mode="after")
    def _source_matches_kind(self) -> ModelConfig:
        if self.kind is ModelKind.DECOY or self.role is Role.DECOY:
            if self.kind is not ModelKind.DECOY or self.role is not Role.DECOY:
                raise ValueError("a decoy has kind: decoy and role: decoy together")
            if self.source is not None:
                raise ValueError("a decoy computes nothing and takes no 'source'")
        elif not self.source:
            raise ValueError(f"kind '{self.kind}' needs a 'source'")
        if (self.role is Role.SPLIT) != (self.share is not None):
            raise ValueError("a model has a 'share' exactly when its role is split")
        return self

    def in_model_process(self, role: Role | None = None) -> bool:
        """Whether this model computes in the model process while it plays ``role``."""
        if self.kind in (ModelKind.HTTP, ModelKind.DECOY) or self.inline:
            return False
        if self.isolation == "thread":
            return False
        return (role or self.role) in (Role.CHALLENGER, Role.CANARY)

    @property
    def linger_ms(self) -> float:
        """How long a lone request waits for company (see :class:`BatchConfig`)."""
        if self.batch.linger_ms is not None:
            return self.batch.linger_ms
        return 0.0 if self.role is Role.CHAMPION else SHADOW_LINGER_MS

    @property
    def computes(self) -> bool:
        """Whether this model produces scores (a decoy only archives)."""
        return self.role is not Role.DECOY


class ScheduleEntry(_Strict):
    model: str
    wait_ms: float | None = Field(default=None, gt=0)


class LookupEnricher(_Strict):
    """Add fields from a table (CSV or JSON) keyed by a request field."""

    kind: Literal["lookup"]
    table: str
    key: str
    fields: list[str] | None = None
    # What to do when the key is not in the table: reject the request, or use ``defaults``.
    on_missing: Literal["error", "default"] = "error"
    defaults: dict[str, float] = Field(default_factory=dict)

    @field_validator("table")
    @classmethod
    def _table_exists(cls, v: str, info: ValidationInfo) -> str:
        path = resolve_path(v, info)
        if not path.is_file():
            raise ValueError(f"file not found: {path}")
        if path.suffix.lower() not in (".csv", ".json"):
            raise ValueError(f"expected a .csv or .json table, got '{path.suffix}'")
        return v


class FunctionEnricher(_Strict):
    """Transform a row with a Python function ``row -> row`` given by import string."""

    kind: Literal["function"]
    source: Annotated[str, Field(pattern=r"^[\w.]+:[\w.]+$")]


EnricherConfig = Annotated[LookupEnricher | FunctionEnricher, Field(discriminator="kind")]


class PromotionConfig(_Strict):
    """Automatic promotion (off unless given): every ``check_every_s`` seconds the API
    process tests each challenger against the champion on ``metric`` over fresh labelled
    requests (at most the last ``window``), and promotes the best one that is better at
    level ``alpha`` with at least ``min_pairs`` labelled requests answered by both.
    See :mod:`rendezvous.auto_promotion` for how repeated tests keep ``alpha`` honest.
    """

    metric: Literal["accuracy", "mae", "rmse"]
    min_pairs: int = Field(default=200, ge=1)
    alpha: float = Field(default=0.05, gt=0, lt=1)
    check_every_s: float = Field(default=60.0, gt=0)
    window: int = Field(default=5000, ge=1)


class Deployment(_Strict):
    """One deployment: a schema, its models and the rendezvous rules that pick an answer."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]*$", max_length=64)]
    input_schema: InputSchema = Field(alias="schema")
    bus: str = "memory"
    archive: str = "sqlite:///rendezvous.db"
    deadline_ms: float = Field(default=50.0, gt=0, le=600_000)
    schedule: list[str | ScheduleEntry] | None = None
    default: dict[str, Any] | None = None
    enrichers: list[EnricherConfig] = Field(default_factory=list)
    models: list[ModelConfig] = Field(min_length=1)
    # the request field that keeps one user on one split arm (consistent hashing); without
    # it, split requests are assigned by request id
    split_key: str | None = None
    max_batch_rows: int = Field(default=1000, ge=1)
    archive_buffer: int = Field(default=100_000, ge=1)
    # the model registry (a directory) where learners publish versions that executors follow
    registry: str = "registry"
    # automatic promotion of a challenger that is better on live labels; None: only by hand
    promotion: PromotionConfig | None = None
    # Directory that relative paths in the file resolve against (set by the loader).
    base_dir: Path = Field(default=Path("."), exclude=True)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("bus")
    @classmethod
    def _bus_url(cls, v: str) -> str:
        if v != "memory" and not v.startswith(("redis://", "rediss://")):
            raise ValueError("expected 'memory' or a redis://host:port/db URL")
        return v

    @field_validator("archive")
    @classmethod
    def _archive_url(cls, v: str) -> str:
        if v != "memory" and not v.startswith(("sqlite://", "postgresql://", "postgres://")):
            raise ValueError("expected 'memory', sqlite:///path.db or a postgresql://… URL")
        return v

    @field_validator("default")
    @classmethod
    def _default_shape(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is None:
            return v
        extra = set(v) - {"prediction", "probabilities"}
        if extra or "prediction" not in v:
            raise ValueError(
                "expected {prediction: …} with optional probabilities: [..], "
                f"got keys {sorted(v)}"
            )
        return v

    @model_validator(mode="after")
    def _cross_checks(self) -> Deployment:
        problems: list[str] = []
        names = [m.name for m in self.models]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            problems.append(f"models: duplicate model names {dupes}")
        champions = [m.name for m in self.models if m.role is Role.CHAMPION]
        if len(champions) != 1:
            problems.append(f"models: expected exactly one champion, found {len(champions)}")
        answering = {m.name for m in self.models if m.role in (Role.CHAMPION, Role.CHALLENGER)}
        for i, entry in enumerate(self.schedule or []):
            model = entry if isinstance(entry, str) else entry.model
            if model not in names:
                problems.append(f"schedule[{i}]: unknown model '{model}'")
            elif model not in answering:
                problems.append(
                    f"schedule[{i}]: '{model}' cannot answer (only champion and challenger"
                    " models can be in the schedule)"
                )
        shares = sum(m.share or 0.0 for m in self.models)
        if shares >= 1.0:
            problems.append(f"models: split shares add up to {shares:g}; they must stay below 1")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # -- derived views -------------------------------------------------------------------

    @property
    def champion(self) -> ModelConfig:
        return next(m for m in self.models if m.role is Role.CHAMPION)

    def model(self, name: str) -> ModelConfig:
        for m in self.models:
            if m.name == name:
                return m
        raise KeyError(name)

    def schedule_entries(self) -> list[ScheduleEntry]:
        """The preference list: as written, or the champion then challengers in file order."""
        if self.schedule is None:
            order = [self.champion.name] + [
                m.name for m in self.models if m.role is Role.CHALLENGER
            ]
            return [ScheduleEntry(model=n) for n in order]
        return [ScheduleEntry(model=e) if isinstance(e, str) else e for e in self.schedule]

    def resolve(self, path: str) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.base_dir / p


def resolve_path(value: str, info: ValidationInfo) -> Path:
    p = Path(value).expanduser()
    base = (info.context or {}).get("base_dir", Path("."))
    return p if p.is_absolute() else Path(base) / p


def _loc(parts: tuple[int | str, ...]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            # pydantic adds the tag of a discriminated union to the path; it is not a field
            if part in ("lookup", "function", "str", "ScheduleEntry"):
                continue
            out += f".{part}" if out else str(part)
    return out


def _problems(exc: ValidationError) -> list[Problem]:
    problems: list[Problem] = []
    for err in exc.errors(include_url=False):
        loc = _loc(tuple(err["loc"]))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (not part of the deployment file format)"
        elif err["type"] == "missing":
            msg = "required key is missing"
        for part in msg.split("; "):
            # cross checks carry their own location as 'loc: message'
            sub_loc, sep, sub_msg = part.partition(": ")
            if sep and not loc and (sub_loc.startswith(("models", "schedule"))):
                problems.append(Problem(sub_loc, sub_msg))
            else:
                problems.append(Problem(loc, part))
    # pydantic reports a str|Entry union failure twice; one message per place is enough
    return list(dict.fromkeys(problems))


def parse_deployment(
    data: Any, *, source: str = "<deployment>", base_dir: Path | None = None
) -> Deployment:
    """Validate already-parsed data (a dict) into a :class:`Deployment`."""
    if not isinstance(data, dict):
        raise ConfigError(
            source, [Problem("", f"expected a mapping at the top, got {type(data).__name__}")]
        )
    base = base_dir or Path(".")
    try:
        dep = Deployment.model_validate(data, context={"base_dir": base})
    except ValidationError as exc:
        raise ConfigError(source, _problems(exc)) from None
    return dep.model_copy(update={"base_dir": base})


def load_deployment(path: str | Path) -> Deployment:
    """Read a YAML or JSON deployment file and validate it."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(p), [Problem("", f"cannot read file: {exc.strerror}")]) from None
    try:
        data = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(str(p), [Problem("", f"not valid YAML/JSON: {exc}")]) from None
    return parse_deployment(data, source=str(p), base_dir=p.resolve().parent)
