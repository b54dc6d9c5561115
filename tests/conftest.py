"""Shared fixtures: the example dumps, a fixed ingest day, a CLI runner on a temporary database."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from digest.cli import main
from digest.store import Location

from .servers import PostgresServer, postgres_server

ROOT = Path(__file__).resolve().parent.parent
DUMPS = ROOT / "examples" / "dumps"
DATA = Path(__file__).resolve().parent / "data"
TODAY = date(2026, 11, 23)
SEED_COUNTS = {
    "000_b302ddefaf34c389.txt": 226,
    "001_dc7b62520b3cf1f2.txt": 56,
    "002_de1b89f38ace8a1e.txt": 86,
    "003_7a5f3204ee6361bf.txt": 75,
}


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty folder with no DIGEST_* variables, so defaults apply (var/digest.sqlite3)."""
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("DIGEST_")]:
        monkeypatch.delenv(name)
    return tmp_path


@pytest.fixture
def cli(workdir: Path, capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Call ``digest`` in-process: ``cli("ingest", path)`` returns code, stdout and stderr."""

    def run(*args: str | Path) -> Result:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def folder(workdir: Path) -> Path:
    """A subscribers folder with the four example profiles, at the default place (./subscribers)."""
    target = workdir / "subscribers"
    shutil.copytree(ROOT / "examples" / "subscribers", target)
    return target


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster for this test worker, started once (``servers.postgres_server``)."""
    with postgres_server() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Location:
    """Where a test's store lives, once on each database: a SQLite file, or a new empty PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "d.sqlite3"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create()


@pytest.fixture
def on_each_database(request: pytest.FixtureRequest, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test's commands once on the default SQLite file and once on a new PostgreSQL database
    (``DIGEST_DATABASE__URL``); parametrise with ``ON_EACH_DATABASE``. Which one, by name."""
    if request.param == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres")
        monkeypatch.setenv("DIGEST_DATABASE__URL", server.create())
    return str(request.param)


ON_EACH_DATABASE = pytest.mark.parametrize("on_each_database", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def on_each_world(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """``deliverykit.make_world`` puts its database in a SQLite file, then (the second run) in a new PostgreSQL
    database. Which one, by name."""
    from . import deliverykit

    if request.param == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres")
        monkeypatch.setattr(deliverykit, "new_database", server.create)
    return str(request.param)
