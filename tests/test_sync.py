"""The subscribers folder sync reads only the profile files that changed since the last sync."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest import pipeline, profiles
from digest.pipeline.subscribers import RACY_NS
from digest.store import FileStamp, Store, Subscribers

AT = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
HOUR_AGO = time.time_ns() - 3600 * 10**9


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The profile files read, by name, as syncs go."""
    seen: list[str] = []
    real = profiles.read

    def counting(path: Path) -> str:
        seen.append(path.name)
        return real(path)

    monkeypatch.setattr(profiles, "read", counting)
    return seen


def _write(folder: Path, name: str, text: str, *, mtime_ns: int = HOUR_AGO) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(text)
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def _sync(store: Store, folder: Path) -> pipeline.SyncReport:
    return pipeline.sync_subscribers(store.subscribers, folder, at=AT)


def test_unchanged_files_are_not_read_again(tmp_path: Path, reads: list[str]) -> None:
    folder = tmp_path / "subscribers"
    folder.mkdir()
    for n in range(5):
        _write(folder, f"u{n}", f'keywords = ["agents", "term{n}"]\n')
    with Store.open(tmp_path / "db.sqlite3") as store:
        first = _sync(store, folder)
        assert sorted(first.changes) == ["u0", "u1", "u2", "u3", "u4"] and len(reads) == 5
        reads.clear()
        second = _sync(store, folder)
        assert (second.changes, second.removed, second.errors, reads) == ({}, [], [], [])
        _write(folder, "u1", 'keywords = ["agents", "changed"]\n', mtime_ns=HOUR_AGO + 10**9)
        os.utime(folder / "u2.toml", ns=(HOUR_AGO + 10**9, HOUR_AGO + 10**9))  # touched: same text
        (folder / "u3.toml").unlink()
        third = _sync(store, folder)
        assert sorted(reads) == ["u1.toml", "u2.toml"]
        assert (third.changes, third.removed) == ({"u1": "updated"}, ["u3"])
        assert dict(pipeline.stored_profile(store.subscribers.get("u1")).keywords) == {"agents": 1.0, "changed": 1.0}  # type: ignore[arg-type]
        reads.clear()
        _write(folder, "u3", 'keywords = ["agents"]\n')
        fourth = _sync(store, folder)
        assert fourth.changes == {"u3": "resubscribed"} and reads == ["u3.toml"]
        assert set(store.subscribers.file_stamps(str(folder))) == {str(folder / f"u{n}.toml") for n in range(5)}


def test_a_file_changed_within_the_mtime_granularity_is_still_seen(tmp_path: Path, reads: list[str]) -> None:
    """Same size, same mtime, other text: caught because its mtime was too close to the last check."""
    folder = tmp_path / "subscribers"
    folder.mkdir()
    now = time.time_ns()
    path = _write(folder, "ann", 'keywords = ["aaaa"]\n', mtime_ns=now)
    with Store.open(tmp_path / "db.sqlite3") as store:
        _sync(store, folder)
        path.write_text('keywords = ["bbbb"]\n')
        os.utime(path, ns=(now, now))
        assert _sync(store, folder).changes == {"ann": "updated"}
        stamp = store.subscribers.file_stamps(str(folder))[str(path)]
        assert stamp.mtime_ns == now and stamp.checked_ns > now - RACY_NS


def test_a_broken_or_unsubscribed_file_is_reported_as_before(tmp_path: Path, reads: list[str]) -> None:
    folder = tmp_path / "subscribers"
    folder.mkdir()
    _write(folder, "bea", 'keywords = ["agents"]\n')
    _write(folder, "cal", 'keywords = ["agents"]\n')
    with Store.open(tmp_path / "db.sqlite3") as store:
        _sync(store, folder)
        _write(folder, "bea", 'keywords = ["agents"\n', mtime_ns=HOUR_AGO + 10**9)
        store.subscribers.set_status("cal", "unsubscribed", at=AT, by="reader")
        for _ in range(2):  # the broken file is read and reported every time; it keeps its subscriber
            broken = _sync(store, folder)
            assert [str(e).split(":")[0] for e in broken.errors] == [str(folder / "bea.toml")]
            assert broken.removed == []
        assert broken.held == []  # said once, on the first sync after the unsubscribe (the test below)
        assert store.subscribers.get("bea").status == "active"  # type: ignore[union-attr]
        assert store.subscribers.get("cal").status == "unsubscribed"  # type: ignore[union-attr]


def test_the_reader_unsubscribe_is_said_once_though_the_file_is_not_read(tmp_path: Path, reads: list[str]) -> None:
    folder = tmp_path / "subscribers"
    folder.mkdir()
    _write(folder, "cal", 'keywords = ["agents"]\n')
    with Store.open(tmp_path / "db.sqlite3") as store:
        _sync(store, folder)
        reads.clear()
        store.subscribers.set_status("cal", "unsubscribed", at=AT, by="reader")
        assert [s.name for s in _sync(store, folder).held] == ["cal"]
        assert _sync(store, folder).held == [] and reads == []


@pytest.mark.parametrize("where", [".", "subscribers", "a/b"])
def test_the_listing_spells_paths_as_the_profiles_store_them(
    tmp_path: Path, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    folder = Path(where)
    folder.mkdir(parents=True, exist_ok=True)
    _write(folder, "zed", 'keywords = ["x"]\n')
    _write(folder, "amy", 'keywords = ["x"]\n')
    listed = [path for path, _, _ in profiles.profile_entries(folder)]
    assert listed == [str(folder / "amy.toml"), str(folder / "zed.toml")]
    profile, _ = profiles.load(folder / "amy.toml")
    assert profile.source == listed[0]


def test_a_folder_listed_as_before_is_not_looked_into(
    tmp_path: Path, reads: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same names, sizes and mtimes as at the last clean sync: not even the files' stamps are loaded."""
    folder = tmp_path / "subscribers"
    folder.mkdir()
    for n in range(3):
        _write(folder, f"u{n}", 'keywords = ["agents"]\n')
    with Store.open(tmp_path / "db.sqlite3") as store:
        _sync(store, folder)
        looked: list[str] = []
        real = Subscribers.file_stamps

        def stamps(self: Subscribers, where: str) -> dict[str, FileStamp]:
            looked.append(where)
            return real(self, where)

        monkeypatch.setattr(Subscribers, "file_stamps", stamps)
        assert _sync(store, folder).changes == {} and looked == []
        _write(folder, "u3", 'keywords = ["agents"]\n')  # one more file: the listing differs
        assert _sync(store, folder).changes == {"u3": "added"} and looked == [str(folder)]
