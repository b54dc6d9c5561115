"""PostgreSQL as the store: one line for each server fault, the password kept out of every line, and the URL
chosen over the file."""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import time_machine

from digest import schedule
from digest.models import NewDelivery
from digest.store import PreparedDigest, Store

from .conftest import DUMPS, ROOT, Result
from .deliverykit import digest_process, make_world
from .servers import PG_PASSWORD_ROLE, Mailbox, PostgresServer, free_port, smtp_server

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


NOW = datetime(2026, 11, 23, 7, 30, tzinfo=UTC)
LATER = NOW + timedelta(minutes=20)  # past a 10-minute lease


def _ledger_of(store: Store, people: int) -> list[int]:
    """``people`` subscribers, each with a digest and one email delivery; the deliveries' ids."""
    for n in range(people):
        store.subscribers.save(f"p{n}", text="t", profile_hash="h", source=f"s/p{n}.toml", at=NOW)
        mail = NewDelivery(f"email:p{n}@example.org", "email", f"p{n}@example.org", f"<m{n}@x>")
        store.digests.save([PreparedDigest(f"p{n}", "2026-11-23", [], deliveries=[mail])], at=NOW)
    return [d.id for d in store.ledger.due(NOW)]


def test_deliveries_claimed_by_one_process_are_skipped_by_another_until_the_lease_runs_out(
    postgres: PostgresServer,
) -> None:
    url, lease = postgres.create(), NOW + timedelta(minutes=10)
    with Store.open(url) as one, Store.open(url) as two:
        ids = _ledger_of(one, 6)
        assert one.ledger.claim(ids[:4], holder="a:1", now=NOW, until=lease) == set(ids[:4])
        long = NOW + timedelta(hours=1)
        assert two.ledger.claim(ids, holder="b:2", now=NOW, until=long) == set(ids[4:])  # the rest, at once
        assert [d.id for d in two.ledger.due(NOW)] == []  # nothing left that nobody holds
        assert one.ledger.start(ids[0], attempts=1, holder="a:1", at=NOW, until=lease)
        assert not two.ledger.start(ids[1], attempts=1, holder="b:2", at=NOW, until=lease)  # a's, not b's
        # "a" dies. Once its lease runs out its rows are due again, the one it had on the wire among them.
        assert {d.id for d in two.ledger.due(LATER)} == set(ids[:4])
        assert two.ledger.claim(ids[:4], holder="b:2", now=LATER, until=LATER + timedelta(minutes=10)) == set(ids[:4])
        assert not one.ledger.start(ids[1], attempts=1, holder="a:1", at=LATER, until=LATER)  # taken over
        one.ledger.update(ids[0], "sent", at=LATER)  # an outcome ends the claim
        assert one.db.conn.execute("SELECT lease_until FROM deliveries WHERE id = ?", (ids[0],)).fetchone()[0] is None


def test_rows_another_process_is_claiming_right_now_are_skipped_not_waited_for(postgres: PostgresServer) -> None:
    url = postgres.create()
    with Store.open(url) as one, Store.open(url) as two:
        ids = _ledger_of(one, 4)
        with one.db.transaction() as conn:  # "one" is in the middle of claiming the first two
            conn.execute("SELECT id FROM deliveries WHERE id IN (?, ?) FOR UPDATE", (ids[0], ids[1]))
            started = time.monotonic()
            assert two.ledger.claim(ids, holder="b:2", now=NOW, until=LATER) == set(ids[2:])
            assert time.monotonic() - started < 5  # SKIP LOCKED: no wait on the other's transaction
        editions = [(f"p{n}", "2026-11-24") for n in range(4)]
        with one.db.transaction() as conn:
            conn.execute("SELECT name FROM subscribers WHERE name = 'p0' FOR UPDATE")
            assert two.claims.editions(editions, holder="b:2", now=NOW, until=LATER) == {"p1", "p2", "p3"}
        assert one.claims.editions(editions, holder="a:1", now=NOW, until=LATER) == {"p0"}
        assert two.claims.editions(editions, holder="c:3", now=LATER + timedelta(seconds=1), until=LATER) == {
            "p0", "p1", "p2", "p3",
        }  # fmt: skip
        two.digests.save([PreparedDigest("p1", "2026-11-24", [])], at=NOW)  # a saved digest lets its claim go
        assert {row[0] for row in two.db.conn.execute("SELECT subscriber FROM claims")} == {"p0", "p2", "p3"}


@time_machine.travel("2026-11-23 12:00:00+00:00", tick=False)
def test_on_sqlite_every_claim_is_granted_and_nothing_is_recorded(tmp_path: Path) -> None:
    with Store.open(tmp_path / "d.sqlite3") as store:
        ids = _ledger_of(store, 3)
        assert store.ledger.claim(ids, holder="a:1", now=NOW, until=LATER) == set(ids)
        assert store.claims.editions([("p0", "2026-11-24")], holder="a:1", now=NOW, until=LATER) == {"p0"}
        assert store.db.conn.execute("SELECT count(*) FROM claims").fetchone()[0] == 0
        assert store.ledger.start(ids[0], attempts=1, holder="a:1", at=NOW, until=LATER)
        assert [d.id for d in store.ledger.due(NOW)] == ids  # a crashed run's row in sending is due at once


def test_two_senders_at_once_make_every_digest_once_and_send_every_message_once(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    people = 24
    with smtp_server(Mailbox(delay=0.005)) as server:
        world = make_world(tmp_path, people=people, smtp_port=server.port, url=postgres.create())
        smtp = f'[smtp]\nhost = "127.0.0.1"\nport = {server.port}\nsecurity = "none"\ntimeout_s = 5\n'
        world.write_config(smtp + "[make]\nbatch_size = 3\n")  # eight batches for the two to share
        senders = [digest_process(tmp_path, "send", "--json") for _ in range(2)]
        outputs = [s.communicate(timeout=120) for s in senders]
        assert [s.returncode for s in senders] == [0, 0], [err for _, err in outputs]
        copies = Counter(m["Message-ID"] for m in server.box.messages)
    assert len(copies) == people and set(copies.values()) == {1}
    summaries = [json.loads(out.splitlines()[-1]) for out, _ in outputs]
    assert sum(s["made"] for s in summaries) == people  # each edition made by one of them
    assert sum(s["sent"] for s in summaries) == people
    with Store.open(world.settings.database.location) as store:
        assert store.db.conn.execute("SELECT count(*), count(DISTINCT subscriber) FROM digests").fetchone() == (
            people, people,
        )  # fmt: skip
