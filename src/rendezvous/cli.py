"""The ``rendezvous`` command: serve, validate, demo."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

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
) -> None:
    """Serve deployments over HTTP (native API, Open Inference Protocol V2, /metrics).

    With a memory bus everything runs in this process. With a redis:// bus this process is
    the API and collector; models run in `rendezvous worker` processes (or --workers).
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
    local = None
    if workers:
        models = sorted({m.name for d in deployments for m in d.models})
        local = LocalWorkers(files, models, workers)
        local.start()
    console.print(f"serving {[d.name for d in deployments]} on http://{host}:{port}")
    try:
        run(create_app(service, max_body_bytes=max_body_bytes), host=host, port=port,
            log_level=log_level)  # fmt: skip
    finally:
        if local is not None:
            local.stop()


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
