"""PostgreSQL as the store: one line for each server fault, the password kept out of every line, and the URL
chosen over the file."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
import time_machine

from digest import schedule

from .conftest import DUMPS, ROOT, Result
from .servers import PG_PASSWORD_ROLE, PostgresServer, free_port

CLI = Callable[..., Result]


def _status(cli: CLI, monkeypatch: pytest.MonkeyPatch, url: str) -> Result:
    monkeypatch.setenv("DIGEST_DATABASE__URL", url)
    return cli("status")


def test_no_server_there_is_one_line_naming_host_and_fix(cli: CLI, monkeypatch: pytest.MonkeyPatch) -> None:
    result = _status(cli, monkeypatch, f"postgresql://digest@127.0.0.1:{free_port()}/digest")
    assert result.code == 1
    [line] = result.err.splitlines()
    assert line.startswith("digest: error: postgresql://digest@127.0.0.1:")
    assert "cannot reach the database server" in line and "host and port in database.url" in line


def test_a_wrong_password_is_one_line_that_never_shows_it(
    cli: CLI, monkeypatch: pytest.MonkeyPatch, postgres: PostgresServer
) -> None:
    url = postgres.url(user=PG_PASSWORD_ROLE).replace("@", ":not-the-password@", 1)
    result = _status(cli, monkeypatch, url)
    assert result.code == 1
    [line] = result.err.splitlines()
    assert "authentication failed; set the password in PGPASSWORD or DIGEST_DATABASE__URL" in line
    assert "not-the-password" not in result.err + result.out
    monkeypatch.setenv("PGPASSWORD", postgres.password)  # libpq reads it: the URL needs no password
    good = _status(cli, monkeypatch, postgres.url(user=PG_PASSWORD_ROLE))
    assert good.code == 0, good.err
    assert postgres.password not in good.out + good.err


def test_a_missing_database_says_create_it(cli: CLI, monkeypatch: pytest.MonkeyPatch, postgres: PostgresServer) -> None:
    result = _status(cli, monkeypatch, postgres.url("no_such_db"))
    [line] = result.err.splitlines()
    assert result.code == 1 and "the database does not exist; create it (createdb)" in line


def test_too_many_connections_says_what_to_change(
    cli: CLI, monkeypatch: pytest.MonkeyPatch, postgres: PostgresServer
) -> None:
    with psycopg.connect(postgres.url(), autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS busy")
        conn.execute("CREATE ROLE busy LOGIN CONNECTION LIMIT 0")
    result = _status(cli, monkeypatch, postgres.url(user="busy"))
    [line] = result.err.splitlines()
    assert result.code == 1 and "too many connections; raise max_connections or run fewer digest processes" in line


def test_a_password_in_the_config_file_is_refused(cli: CLI, workdir: Path) -> None:
    (workdir / "digest.toml").write_text('[database]\nurl = "postgresql://app:hunter2@db:5432/digest"\n')
    result = cli("status")
    assert result.code != 0
    assert "key 'database.url': a password does not belong in the config file" in result.err
    assert "hunter2" not in result.err


@time_machine.travel("2026-11-23 12:00:00+00:00", tick=False)
def test_the_url_wins_over_the_path_and_both_databases_give_the_same_answers(
    cli: CLI, monkeypatch: pytest.MonkeyPatch, postgres: PostgresServer, workdir: Path
) -> None:
    (workdir / "digest.toml").write_text(f'[database]\npath = "var/x.sqlite3"\nurl = "{postgres.create()}"\n')
    assert cli("ingest", DUMPS).code == 0
    assert not (workdir / "var" / "x.sqlite3").exists()
    on_postgres = cli("papers", "--json").out
    (workdir / "digest.toml").write_text('[database]\npath = "var/x.sqlite3"\n')
    assert cli("ingest", DUMPS).code == 0
    assert cli("papers", "--json").out == on_postgres != ""


def _installation(cli: CLI, workdir: Path) -> None:
    """The example subscribers, the example dumps, and one day's digests sent to the outbox."""
    shutil.copytree(ROOT / "examples" / "subscribers", workdir / "subscribers")
    assert cli("ingest", DUMPS).code == 0
    sent = cli("send")
    assert sent.code == 0, sent.err


@time_machine.travel("2026-11-23 12:00:00+00:00", tick=False)
def test_migrate_db_copies_every_row_checked_and_the_service_goes_on_there(
    cli: CLI, workdir: Path, monkeypatch: pytest.MonkeyPatch, postgres: PostgresServer
) -> None:
    _installation(cli, workdir)
    before = {name: cli(name, "--json").out for name in ("papers", "deliveries", "subscribers")}
    url = postgres.create()
    moved = cli("migrate-db", "--to", url, "--json")
    assert moved.code == 0, moved.err
    report = json.loads(moved.out)
    assert report["tables"]["papers"]["rows"] == 429 and report["tables"]["digests"]["rows"] == 4
    assert report["rows"] == sum(t["rows"] for t in report["tables"].values())
    monkeypatch.setenv("DIGEST_DATABASE__URL", url)
    assert {name: cli(name, "--json").out for name in before} == before
    with time_machine.travel("2026-11-24 12:00:00+00:00", tick=False):
        assert cli("send").code == 0  # new digests and deliveries take ids after the copied ones
        rows = [json.loads(line) for line in cli("deliveries", "--json").out.splitlines()]
    assert len({r["id"] for r in rows}) == len(rows) > 4


def test_migrate_db_refuses_a_database_that_is_not_empty_and_keeps_it_as_it_was(
    cli: CLI, workdir: Path, postgres: PostgresServer
) -> None:
    _installation(cli, workdir)
    url = postgres.create()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE theirs (x INTEGER)")
    refused = cli("migrate-db", "--to", url)
    assert refused.code == 1
    assert "not empty (1 table: theirs); migrate-db copies into an empty database" in refused.err
    with psycopg.connect(url) as conn:
        assert conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone() == (1,)


def test_migrate_db_is_refused_while_a_digest_holds_the_database(
    cli: CLI, workdir: Path, postgres: PostgresServer
) -> None:
    _installation(cli, workdir)
    with schedule.exclusive(workdir / "var" / "digest.sqlite3"):
        busy = cli("migrate-db", "--to", postgres.create())
    assert busy.code != 0 and "in use by a running digest" in busy.err


def test_migrate_db_wants_the_password_out_of_the_command_line(cli: CLI, workdir: Path) -> None:
    _installation(cli, workdir)
    refused = cli("migrate-db", "--to", "postgresql://app:hunter2@db:5432/digest")
    assert refused.code == 2 and "set PGPASSWORD" in refused.err and "hunter2" not in refused.err
