"""The ``rendezvous`` command: serve, validate, compare, promote, roll back, demo."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from .config import Deployment, load_deployment
from .errors import ConfigError, Problem, RendezvousError
from .roles import Roles
from .service import Rendezvous

__all__ = ["app", "main"]

app = typer.Typer(
    name="rendezvous",
    help="Real-time model serving on the Rendezvous architecture.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
if not console.is_terminal:  # logs and pipes: wide enough that tables keep whole names
    console.width = max(console.width, 160)
# problems name paths and fields: never wrap them, a reader greps for them
err = Console(stderr=True, soft_wrap=True)

Files = Annotated[list[Path], typer.Argument(help="Deployment files (YAML or JSON).")]


def _fail(exc: RendezvousError) -> typer.Exit:
    if isinstance(exc, ConfigError):
        err.print(f"[red]✗[/] {exc.source}: {len(exc.problems)} problem(s)")
        for p in exc.problems:
            err.print(f"  [bold]{p.loc or '(file)'}[/]: {p.msg}", highlight=False)
    else:
        err.print(f"[red]✗[/] {exc}", highlight=False)
    return typer.Exit(exc.exit_code)


@app.command()
def validate(
    files: Files,
    load: Annotated[
        bool, typer.Option("--load/--no-load", help="Also load every model and enricher.")
    ] = True,
) -> None:
    """Check deployment files: print OK, or every problem with its field path."""
    from .config import load_deployment
    from .enrich import build_enrichers
    from .runtime import load_models

    failed: RendezvousError | None = None
    for path in files:
        try:
            dep = load_deployment(path)
            if load:
                build_enrichers(dep)
                for model in load_models(dep).values():
                    if hasattr(model, "close"):
                        model.close()
        except RendezvousError as exc:
            failed = exc
            _fail(exc)
            continue
        console.print(
            f"[green]OK[/] {path}: deployment '{dep.name}', {len(dep.models)} models",
            soft_wrap=True,
        )
    if failed is not None:
        raise typer.Exit(failed.exit_code)


def _service(files: list[Path], roles: Roles | None = None) -> Rendezvous:
    try:
        return Rendezvous.from_files(files, roles=roles)
    except RendezvousError as exc:
        raise _fail(exc) from None


def _logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(levelname)s %(name)s: %(message)s")


LogLevel = Annotated[str, typer.Option(help="Log level.")]


@app.command()
def serve(
    files: Files,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            help="With a redis:// bus: start this many local worker processes per model, "
            "and an archiver. 0 (the default) leaves workers to `rendezvous worker`."
        ),
    ] = 0,
    log_level: LogLevel = "info",
    max_body_bytes: Annotated[int, typer.Option(help="Largest request body accepted.")] = 1 << 20,
    learner: Annotated[
        bool,
        typer.Option(
            "--learner/--no-learner",
            help="Start a learner process for models with a learning: block (the default); "
            "--no-learner leaves learning to `rendezvous learner`.",
        ),
    ] = True,
) -> None:
    """Serve deployments over HTTP (native API, Open Inference Protocol V2, /metrics).

    With a memory bus everything runs in this process. With a redis:// bus this process is
    the API and collector; models run in `rendezvous worker` processes (or --workers).
    Models with a learning: block are retrained by a learner process started here.
    """
    from .api.app import create_app
    from .processes import LocalWorkers
    from .server import serve as run

    _logging(log_level)
    deployments = _service(files).deployments
    distributed = all(d.bus != "memory" for d in deployments)
    if workers and not distributed:
        raise _fail(ConfigError("serve", [Problem("--workers", "needs a redis:// bus")]))
    service = _service(files, Roles.api_only() if distributed else None)
    learning = None
    if learner:
        from .learning.process import LearnerProcess, check_shareable

        try:
            if check_shareable(deployments):
                learning = LearnerProcess(files, log_level=log_level)
        except RendezvousError as exc:
            raise _fail(exc) from None
    local = None
    if workers:
        models = sorted({m.name for d in deployments for m in d.models})
        local = LocalWorkers(files, models, workers)
        local.start()
    if learning is not None:
        learning.start()
    console.print(f"serving {[d.name for d in deployments]} on http://{host}:{port}")
    try:
        run(create_app(service, max_body_bytes=max_body_bytes), host=host, port=port,
            log_level=log_level)  # fmt: skip
    finally:
        if local is not None:
            local.stop()
        if learning is not None:
            learning.stop()


@app.command()
def worker(
    files: Files,
    model: Annotated[list[str], typer.Option("--model", help="Model(s) to run here.")],
    concurrency: Annotated[
        int, typer.Option(help="Executors (bus consumers) per model in this process.")
    ] = 1,
    log_level: LogLevel = "info",
) -> None:
    """Run the executors of some models (needs a redis:// bus); stop with SIGTERM."""
    from .processes import run_headless

    _logging(log_level)
    known = {m.name for d in _service(files).deployments for m in d.models}
    unknown = sorted(set(model) - known)
    if unknown:
        raise _fail(ConfigError("worker", [Problem("--model", f"unknown model(s) {unknown}")]))
    run_headless(_service(files, Roles.worker(model, concurrency)))


@app.command()
def archiver(files: Files, log_level: LogLevel = "info") -> None:
    """Move the scores stream into the archive (needs a redis:// bus); stop with SIGTERM."""
    from .processes import run_headless

    _logging(log_level)
    run_headless(_service(files, Roles.archiver_only()))


@app.command("learner")
def learner_process(
    files: Files,
    poll: Annotated[
        float, typer.Option(help="Seconds between looks at the archive when idle.")
    ] = 0.5,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve the learner's Prometheus metrics on this port.")
    ] = None,
    parent: Annotated[
        int | None, typer.Option(hidden=True, help="Stop when this process is gone.")
    ] = None,
    log_level: LogLevel = "info",
) -> None:
    """Retrain the models that have a learning: block, from the labelled examples in the
    archive, and publish validated versions to the registry; stop with SIGTERM."""
    from .learning.process import run_learners

    _logging(log_level)
    deployments = [_one_deployment(f) for f in files]
    try:
        run_learners(deployments, poll_s=poll, metrics_port=metrics_port, parent=parent)
    except RendezvousError as exc:
        raise _fail(exc) from None


def _when(value: str | None, option: str) -> float | None:
    """A time from the command line: epoch seconds, ISO 8601, or an age like 15m, 2h, 1d."""
    if value is None:
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        if value[-1:] in units and value[:-1].replace(".", "", 1).isdigit():
            return time.time() - float(value[:-1]) * units[value[-1]]
        return float(value)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise _fail(
            ConfigError(option, [Problem(option, f"expected epoch seconds, ISO 8601 or an age "
                                                 f"like 15m/2h/1d, got {value!r}")])
        ) from None  # fmt: skip


def _one_deployment(file: Path) -> Deployment:
    try:
        return load_deployment(file)
    except RendezvousError as exc:
        raise _fail(exc) from None


Since = Annotated[str | None, typer.Option(help="From: epoch s, ISO 8601, or an age (2h).")]
Until = Annotated[str | None, typer.Option(help="Until (excluded): same forms as --since.")]


@app.command("compare")
def compare_models(
    file: Annotated[Path, typer.Argument(help="The deployment file.")],
    last: Annotated[int | None, typer.Option(help="The last N requests.")] = None,
    since: Since = None,
    until: Until = None,
    metric: Annotated[
        str | None, typer.Option(help="Also test each challenger: accuracy, mae or rmse.")
    ] = None,
    alpha: Annotated[float, typer.Option(help="Significance level of the test.")] = 0.05,
    min_pairs: Annotated[int, typer.Option(help="Least labelled pairs to decide.")] = 200,
) -> None:
    """Compare the deployment's models from its archive: quality, agreement, operations."""
    from .archive import open_archive
    from .compare import PromotionPolicy, Window, compare, render
    from .promotion import current_champion
    from .runtime import load_models

    dep = _one_deployment(file)
    try:
        if last is None and since is None and until is None:
            last = 1000
        window = Window(last=last, since=_when(since, "--since"), until=_when(until, "--until"))
        policy = PromotionPolicy(metric, min_pairs, alpha) if metric else None  # type: ignore[arg-type]
        models = load_models(dep)
        classes = {n: m.info.classes for n, m in models.items() if m.info.classes is not None}
        archive = open_archive(dep.archive, base_dir=dep.base_dir)
        archive.start()
        try:
            champion = current_champion(archive, dep)  # promotions change it
            comparison = compare(
                archive, dep, window, classes=classes, policy=policy, champion_name=champion
            )
        finally:
            archive.stop()
    except RendezvousError as exc:
        raise _fail(exc) from None
    for table in render(comparison):
        console.print(table)


@app.command("replay")
def replay_model(
    file: Annotated[Path, typer.Argument(help="The deployment file.")],
    model: Annotated[
        str, typer.Option(help="A model of the file, or a new one (--kind, --source).")
    ],
    kind: Annotated[str | None, typer.Option(help="Kind of a model not in the file.")] = None,
    source: Annotated[str | None, typer.Option(help="Source of a model not in the file.")] = None,
    version: Annotated[str | None, typer.Option(help="Version to record.")] = None,
    since: Since = None,
    until: Until = None,
) -> None:
    """Run archived inputs (as the models saw them) through a model; compare the result."""
    from .archive import open_archive
    from .compare import Window, compare, render
    from .config import ModelConfig
    from .replay import replay

    dep = _one_deployment(file)
    try:
        known = {m.name: m for m in dep.models}
        if model in known and kind is None and source is None:
            cfg = known[model]
        else:
            if kind is None or source is None:
                problem = f"'{model}' is not in {file}; give --kind and --source for a new model"
                raise ConfigError("replay", [Problem("--model", problem)])
            if Path(source).exists():  # a file named from here, not from the deployment's folder
                source = str(Path(source).resolve())
            cfg = ModelConfig.model_validate(
                {"name": model, "kind": kind, "source": source, "version": version}
            )
        start, end = _when(since, "--since"), _when(until, "--until")
        archive = open_archive(dep.archive, base_dir=dep.base_dir)
        archive.start()
        try:
            result = replay(archive, dep, cfg, since=start, until=end)
            window = (
                Window(since=start, until=end)
                if start or end
                else Window(last=result.requests or 1)
            )
            comparison = compare(archive, dep, window, models=[f"{model}@{result.version}"])
        finally:
            archive.stop()
    except RendezvousError as exc:
        raise _fail(exc) from None
    except ValidationError as exc:
        raise _fail(ConfigError("replay", [Problem("model", str(exc))])) from None
    console.print(
        f"replayed {result.requests} archived requests through {model}@{result.version}: "
        f"{result.scored} scored ({result.errors} errors), {result.skipped} already done"
    )
    for table in render(comparison):
        console.print(table)


# -- champion changes: recorded in the archive, followed by every serving process ----------


def _record_change(file: Path, change: str, model: str | None = None) -> None:
    import msgspec

    from .archive import open_archive
    from .promotion import cli_origin, record_promotion, record_rollback

    dep = _one_deployment(file)
    try:
        if dep.archive == "memory":
            # a fresh in-process archive: no running process would ever see the event
            problem = "'memory' lives inside the serving process: use its HTTP API instead"
            raise ConfigError(change, [Problem("archive", problem)])
        archive = open_archive(dep.archive, base_dir=dep.base_dir)
        archive.start()
        try:
            if model is not None:
                event = record_promotion(archive, dep, model, origin=cli_origin())
            else:
                event = record_rollback(archive, dep, origin=cli_origin())
        finally:
            archive.stop()
    except RendezvousError as exc:
        raise _fail(exc) from None
    verb = "promoted" if change == "promote" else "rolled back to"
    console.print(
        f"{verb} '{event.model}' in '{dep.name}' (was '{event.detail['previous']}'): every "
        "serving process follows within about a second",
        highlight=False,
        soft_wrap=True,
    )
    print(msgspec.json.encode(event).decode())  # the event itself, for scripts


@app.command()
def promote(
    file: Annotated[Path, typer.Argument(help="The deployment file.")],
    model: Annotated[str, typer.Option(help="The challenger to make the champion.")],
) -> None:
    """Make a challenger the champion of a deployment, in every process serving it."""
    _record_change(file, "promote", model)


@app.command()
def rollback(file: Annotated[Path, typer.Argument(help="The deployment file.")]) -> None:
    """Go back to the champion before the latest promotion."""
    _record_change(file, "rollback")


@app.command()
def demo(
    directory: Annotated[
        Path, typer.Option(help="Where the demo writes its models, deployment and archive.")
    ] = Path("rendezvous-demo"),
    requests: Annotated[int, typer.Option(help="How many requests to send.")] = 3000,
    concurrency: Annotated[int, typer.Option(help="Requests in flight at once.")] = 16,
) -> None:
    """Build an example deployment, serve it over HTTP, drive traffic, compare the models."""
    from .demo import run_demo

    logging.basicConfig(level="WARNING")
    try:
        run_demo(directory, n_requests=requests, concurrency=concurrency, console=console)
    except RendezvousError as exc:
        raise _fail(exc) from None


def main() -> None:
    app()
