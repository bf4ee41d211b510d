"""A real PostgreSQL for tests, no mocks.

``find_server()`` starts a throwaway server when ``initdb`` and ``pg_ctl`` are installed (on
a free port, 127.0.0.1 only, trust auth, fsync off: nothing in it outlives the session);
otherwise it uses the server at ``127.0.0.1:5432``, database ``test``, user ``postgres``.
With neither, tests that need PostgreSQL are skipped, or fail when ``CI=true`` (CI must not
go green by skipping the backend it was meant to check). ``RENDEZVOUS_TEST_POSTGRES=<url>``
names a server to use instead of either (a CI service container, say).

Each test gets a PostgreSQL schema of its own (``schema_name()``), dropped afterwards, so
tests never see each other's rows, even on a shared fallback server.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import psycopg
import pytest
from psycopg import sql

__all__ = ["PostgresServer", "drop_schema", "find_server", "schema_name"]

FALLBACK_URL = "postgresql://postgres@127.0.0.1:5432/test"
HOW_TO_GET_ONE = (
    "PostgreSQL tests need initdb/pg_ctl on PATH or in /usr/lib/postgresql/*/bin"
    " (apt-get install postgresql), or a server at 127.0.0.1:5432 with a database 'test'"
    " that user 'postgres' can reach with trust auth"
)


@dataclass
class PostgresServer:
    """A server the tests can reach; ``owned`` when this session started it (and may stop it)."""

    url: str
    data_dir: Path | None = None
    pg_ctl: Path | None = None
    port: int = 5432
    run_as: Sequence[str] = ()  # the command prefix that runs pg_ctl as the postgres user

    @property
    def owned(self) -> bool:
        return self.data_dir is not None

    def start(self) -> None:
        assert self.data_dir is not None and self.pg_ctl is not None, "not a throwaway server"
        socket_dir = self.data_dir  # not /var/run/postgresql: it may be missing or not ours
        options = (
            f"-p {self.port} -F -c listen_addresses=127.0.0.1"
            f" -c unix_socket_directories={socket_dir} -c full_page_writes=off"
            " -c max_connections=200"
        )
        log = self.data_dir / "server.log"
        ctl = [str(self.pg_ctl), "-D", str(self.data_dir), "-l", str(log), "-o", options]
        self._run([*ctl, "-w", "-t", "60", "start"], what="pg_ctl start", log=log)

    def stop(self) -> None:
        """Stop at once, as a crash would (``-m immediate``): nothing in it must survive."""
        assert self.data_dir is not None and self.pg_ctl is not None, "not a throwaway server"
        self._run(
            [str(self.pg_ctl), "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"],
            what="pg_ctl stop",
        )

    def destroy(self) -> None:
        if self.data_dir is None:
            return
        try:
            self.stop()
        finally:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def _run(self, command: list[str], *, what: str, log: Path | None = None) -> None:
        done = subprocess.run(
            [*self.run_as, *command], capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"{what} failed ({done.returncode}): {done.stderr}{tail}")


def find_server() -> PostgresServer:
    """A started server: a throwaway one if possible, else the fallback; skip (or fail) if none."""
    problems: list[str] = []
    given = os.environ.get("RENDEZVOUS_TEST_POSTGRES")
    if given:
        return _reachable(given, problems) or _give_up(problems)
    bin_dir = _bin_dir()
    if bin_dir is not None:
        try:
            return _throwaway(bin_dir)
        except (OSError, RuntimeError, subprocess.SubprocessError, KeyError) as exc:
            problems.append(f"cannot start a throwaway server with {bin_dir}: {exc}")
    return _reachable(FALLBACK_URL, problems) or _give_up(problems)


def schema_name() -> str:
    return f"rv_test_{uuid.uuid4().hex[:12]}"


def drop_schema(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def _reachable(url: str, problems: list[str]) -> PostgresServer | None:
    try:
        with psycopg.connect(url, connect_timeout=3, autocommit=True):
            return PostgresServer(url)
    except psycopg.Error as exc:
        problems.append(f"no server at {url}: {str(exc).strip()}")
        return None


def _give_up(problems: list[str]) -> NoReturn:
    message = f"{HOW_TO_GET_ONE}. Tried: " + "; ".join(problems)
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _bin_dir() -> Path | None:
    initdb = shutil.which("initdb")
    if initdb is not None:
        found = Path(initdb).resolve().parent
        if (found / "pg_ctl").exists():
            return found
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    for candidate in reversed(versions):
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    return None


def _throwaway(bin_dir: Path) -> PostgresServer:
    run_as: list[str] = []
    data_dir = Path(tempfile.mkdtemp(prefix="rv-pg-"))
    try:
        if os.geteuid() == 0:
            # initdb refuses to run as root: the server runs as the postgres OS user.
            user = pwd.getpwnam("postgres")  # KeyError: no such user, use the fallback
            os.chown(data_dir, user.pw_uid, user.pw_gid)
            runuser = shutil.which("runuser")
            if runuser is None:
                raise RuntimeError("runuser is needed to start PostgreSQL as root")
            run_as = [runuser, "-u", "postgres", "--"]
        server = PostgresServer(
            url="",
            data_dir=data_dir,
            pg_ctl=bin_dir / "pg_ctl",
            port=_free_port(),
            run_as=run_as,
        )
        initdb = [str(bin_dir / "initdb"), "-D", str(data_dir), "-U", "postgres", "-A", "trust"]
        server._run([*initdb, "-E", "UTF8", "--no-locale", "--no-sync"], what="initdb")
        server.url = f"postgresql://postgres@127.0.0.1:{server.port}/postgres"
        server.start()
        return server
    except BaseException:
        shutil.rmtree(data_dir, ignore_errors=True)
        raise


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
