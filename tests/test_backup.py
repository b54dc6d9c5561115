"""Backups, restores and the copy before an upgrade: whole and checked, or nothing replaced."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import threading
from contextlib import closing
from pathlib import Path

import pytest

from digest import schedule, store
from digest.cli import main
from digest.errors import BusyError, StoreError
from digest.store import Store, copies

from .deliverykit import World, make_world
from .schemas import released


def counts(path: Path) -> dict[str, int]:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {table: conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] for table in tables}


def sent_world(root: Path) -> World:
    world = make_world(root, people=3)
    world.write_config(f'[delivery]\noutbox_dir = "{root / "outbox"}"\n')
    world.send()
    return world


def test_a_backup_is_a_checked_whole_copy_made_while_others_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    world = sent_world(tmp_path)
    monkeypatch.chdir(tmp_path)
    database = world.settings.database.path
    stop = threading.Event()

    def write() -> None:  # the daemon, going on meanwhile
        with Store.open(database) as other:
            while not stop.is_set():
                other.subscribers.set_status("user000", "paused", at=world.clock())
                other.subscribers.set_status("user000", "active", at=world.clock())

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert main(["backup", str(tmp_path / "copy.sqlite3")]) == 0
    finally:
        stop.set()
        writer.join(timeout=60)
    said = capsys.readouterr().out
    assert said.startswith(f"backed up {database} to {tmp_path / 'copy.sqlite3'}: ") and "(integrity ok)" in said
    copy = tmp_path / "copy.sqlite3"
    assert counts(copy) == counts(database)  # every table, every row
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staged file left behind


def test_a_backup_into_a_folder_is_named_by_the_time_and_json_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sent_world(tmp_path)
    (tmp_path / "backups").mkdir()
    monkeypatch.chdir(tmp_path)
    assert main(["backup", "backups", "--json"]) == 0
    import json

    line = json.loads(capsys.readouterr().out)
    [made] = list((tmp_path / "backups").iterdir())
    assert tmp_path / line["backup"] == made and made.name.startswith("digest-") and line["integrity"] == "ok"
    assert line["bytes"] == made.stat().st_size and line["schema"] == store.SCHEMA_VERSION


def test_no_database_yet_is_one_line_not_an_empty_backup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["backup", "copy.sqlite3"]) == 2
    assert "no database yet, so nothing to back up" in capsys.readouterr().err
    assert not (tmp_path / "copy.sqlite3").exists() and not (tmp_path / "var").exists()


def test_restore_brings_the_copy_back_and_keeps_the_current_file_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    world = sent_world(tmp_path)
    monkeypatch.chdir(tmp_path)
    database = world.settings.database.path
    assert main(["backup", "copy.sqlite3"]) == 0
    with Store.open(database) as db:  # a change after the backup
        db.subscribers.set_status("user001", "unsubscribed", at=world.clock(), by="operator")
    assert main(["restore", "copy.sqlite3"]) == 0
    said = capsys.readouterr().out
    [aside] = list(database.parent.glob("digest.before-restore-*.sqlite3"))
    assert f"the previous file is kept as {aside}" in said and "restart 'digest serve'" in said
    with Store.open(database) as db:
        found = db.subscribers.get("user001")
        assert found is not None and found.status == "active"  # as it was at the backup
    with Store.open(aside) as old:
        kept = old.subscribers.get("user001")
        assert kept is not None and kept.status == "unsubscribed"  # nothing of the later change is lost


def test_restore_is_refused_while_a_run_holds_the_database_or_the_file_is_no_backup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = sent_world(tmp_path)
    monkeypatch.chdir(tmp_path)
    database = world.settings.database.path
    assert main(["backup", "copy.sqlite3"]) == 0
    before = counts(database)
    with (
        schedule.exclusive(database),
        pytest.raises(BusyError, match="in use by a running digest"),
        schedule.exclusive(database),  # what `digest restore` meets while the daemon runs
    ):
        pass
    (tmp_path / "notes.sqlite3").write_bytes(b"just some notes, no database\n" * 200)
    for bad, said in (("notes.sqlite3", "not a paper-digest database"), ("missing.sqlite3", "no such backup file")):
        with pytest.raises(StoreError, match=said):
            store.restore(tmp_path / bad, database, at=world.clock())
    assert counts(database) == before and not list(database.parent.glob("*before-restore*"))


def test_restore_through_the_command_line_is_refused_while_the_daemon_holds_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    world = sent_world(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["backup", "copy.sqlite3"]) == 0
    with schedule.exclusive(world.settings.database.path):
        code = main(["restore", "copy.sqlite3"])
    assert code != 0 and "in use by a running digest" in capsys.readouterr().err


def _old(path: Path, version: int) -> None:
    """A database as the released migrations left it at ``version``, with a subscriber."""
    with released(path, version) as conn:
        conn.execute(
            "INSERT INTO subscribers (name, profile, profile_hash, status, created_at, updated_at)"
            " VALUES ('ada', 'keywords = [\"agents\"]', '1', 'active', '2026-11-22', '2026-11-22')"
        )


def test_an_upgrade_takes_a_copy_first_and_says_so_in_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "digest.sqlite3"
    _old(path, 4)
    with caplog.at_level(logging.WARNING, logger="digest.store"), Store.open(path) as db:
        assert db.papers.status().schema_version == store.SCHEMA_VERSION
    copy = tmp_path / "digest.pre-v4.sqlite3"
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith(
        f"upgraded {path} from schema 4 to {store.SCHEMA_VERSION} (backup: {copy}; vacuumed once in "
    )
    assert line.endswith("s, so space is given back as it is freed)")
    with closing(sqlite3.connect(copy)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 4
        assert conn.execute("SELECT name FROM subscribers").fetchall() == [("ada",)]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="digest.store"), Store.open(path):
        pass
    assert not caplog.records  # once


def test_an_upgrade_on_a_short_disk_goes_on_without_the_copy_and_says_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "digest.sqlite3"
    _old(path, 6)
    monkeypatch.setattr(copies, "free_bytes", lambda folder: 10 << 20)
    with caplog.at_level(logging.WARNING, logger="digest.store"), Store.open(path) as db:
        assert db.subscribers.get("ada") is not None
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith(f"upgraded {path} from schema 6 to {store.SCHEMA_VERSION} (no copy taken: 10 MB free")
    assert line.endswith("; space is not given back: no room to vacuum (10 MB free, 0 MB needed))")
    assert not list(tmp_path.glob("*.pre-v*")) and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_the_command_line_prints_the_upgrade_line_and_version_names_the_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "var").mkdir()
    _old(tmp_path / "var" / "digest.sqlite3", 4)
    os.chmod(tmp_path / "var" / "digest.sqlite3", 0o600)
    assert main(["status"]) == 0
    err = capsys.readouterr().err
    assert f"digest: upgraded var/digest.sqlite3 from schema 4 to {store.SCHEMA_VERSION} (backup: " in err
    assert main(["--version"]) == 0
    assert f"(database schema {store.SCHEMA_VERSION})" in capsys.readouterr().out
