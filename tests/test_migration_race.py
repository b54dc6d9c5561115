"""Processes that open an old database at once (the daemon and the web side after an upgrade) all see it upgraded."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from digest import store

from .schemas import released

OPEN = """
import sys
from pathlib import Path
from digest.store import Store
with Store.open(Path(sys.argv[1])) as db:
    print(db.papers.status().schema_version)
"""


def _schema_4(path: Path) -> None:
    with released(path, 4) as conn:
        conn.execute(
            "INSERT INTO subscribers (name, profile, profile_hash, status, created_at, updated_at)"
            " VALUES ('ada', 'a', '1', 'active', '2026-11-22', '2026-11-22')"
        )


@pytest.mark.slow
def test_three_processes_opening_a_schema_4_database_at_once_all_succeed(tmp_path: Path) -> None:
    for trial in range(10):
        path = tmp_path / f"old-{trial}.sqlite3"
        _schema_4(path)
        runs = [
            subprocess.Popen(
                [sys.executable, "-c", OPEN, str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for _ in range(3)
        ]
        results = [(run.communicate(timeout=120), run.returncode) for run in runs]
        for (out, err), code in results:
            assert code == 0, f"trial {trial}: {err.strip().splitlines()[-1:]}"
            assert out.strip() == str(store.SCHEMA_VERSION)
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT name FROM subscribers").fetchall() == [("ada",)]
        # One copy of the old file, from the process that migrated; the others' staged copies are gone.
        assert [p.name for p in tmp_path.glob(f"old-{trial}.pre-v*")] == [f"old-{trial}.pre-v4.sqlite3"]
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
