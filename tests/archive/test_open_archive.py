"""open_archive: one URL names a backend; a bad one says what was expected."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import rendezvous.archive
from rendezvous.archive import MemoryArchive, PostgresArchive, SQLiteArchive, open_archive
from rendezvous.errors import ArchiveError, MissingDependency


def test_memory() -> None:
    archive = open_archive("memory", max_buffer=7, flush_interval=0.5)
    assert isinstance(archive, MemoryArchive)
    assert (archive.max_buffer, archive.flush_interval) == (7, 0.5)


def test_sqlite_relative_to_base_dir(tmp_path: Path) -> None:
    archive = open_archive("sqlite:///data/rv.db", base_dir=tmp_path, max_buffer=7)
    assert isinstance(archive, SQLiteArchive)
    assert archive.path == tmp_path / "data" / "rv.db"
    assert archive.max_buffer == 7
    assert not (tmp_path / "data").exists()  # nothing touched until start()


def test_sqlite_relative_without_base_dir_is_relative_to_the_working_directory() -> None:
    archive = open_archive("sqlite:///rv.db")
    assert isinstance(archive, SQLiteArchive)
    assert archive.path == Path("rv.db")


def test_sqlite_absolute_ignores_base_dir(tmp_path: Path) -> None:
    target = tmp_path / "abs" / "rv.db"
    archive = open_archive(f"sqlite:///{target}", base_dir=Path("/elsewhere"))
    assert isinstance(archive, SQLiteArchive)
    assert archive.path == target
    assert str(target).startswith("/")  # so the URL above had four slashes


def test_an_opened_sqlite_archive_works(tmp_path: Path) -> None:
    with open_archive("sqlite:///rv.db", base_dir=tmp_path) as archive:
        assert archive.counts("fraud") == {"requests": 0, "scores": 0, "inputs": 0, "examples": 0}
    assert (tmp_path / "rv.db").is_file()


@pytest.mark.parametrize("url", ["postgresql://user@db/rendezvous", "postgres://db/rv?schema=a"])
def test_postgresql(url: str) -> None:
    archive = open_archive(url, max_buffer=7, flush_interval=0.5)
    assert isinstance(archive, PostgresArchive)  # nothing connected until start()
    assert (archive.max_buffer, archive.flush_interval) == (7, 0.5)
    assert archive.schema == ("a" if url.endswith("a") else None)


def test_postgresql_without_psycopg_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg raises ImportError
    monkeypatch.delitem(sys.modules, "rendezvous.archive.postgres", raising=False)
    with pytest.raises(MissingDependency, match=r"pip install 'rendezvous-ml\[postgres\]'"):
        open_archive("postgresql://db/rv")
    with pytest.raises(MissingDependency, match="psycopg"):
        rendezvous.archive.PostgresArchive  # noqa: B018


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("", "expected 'memory'"),
        ("Memory", "expected 'memory'"),
        ("redis://127.0.0.1:6379/0", "expected 'memory'"),
        ("sqlite://rv.db", "expected 'memory'"),
        ("sqlite:///", "names no file"),
        ("sqlite:///:memory:", "use 'memory'"),
        ("sqlite:///rv.db?mode=ro", "query parameters"),
    ],
)
def test_a_bad_url_is_named_with_what_was_expected(url: str, says: str) -> None:
    with pytest.raises(ArchiveError, match=says) as caught:
        open_archive(url)
    assert repr(url) in str(caught.value)


def test_public_names() -> None:
    for name in rendezvous.archive.__all__:
        assert getattr(rendezvous.archive, name) is not None
