"""Database and file-system faults: one line naming the file, what happened and the fix; exit 1; nothing lost.

The faults are real. A damaged database has its pages overwritten. A read-only
folder, a full disk and a lock file that cannot be written are tmpfs and bind
mounts made in a private mount namespace (``unshare``), so the tests need no
privileges, leave no mount behind, and hold for root too (chmod does not stop
root from writing).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import DUMPS

PEOPLE = ("ada", "ben", "chen")


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = ["unshare", "--user", "--map-root-user", "--mount", "true"]
    return subprocess.run(probe, check=False, capture_output=True).returncode == 0


needs_namespaces = pytest.mark.skipif(not _unshare_works(), reason="needs user and mount namespaces (unshare)")


@dataclass
class Run:
    code: int
    out: str
    err: str


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}


def _digest(*args: str) -> str:
    return shlex.join([sys.executable, "-m", "digest", *args])


def make_home(root: Path) -> Path:
    """A working folder as an operator has it: digest.toml, dumps ingested, three profiles (outbox)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "digest.toml").write_text('[database]\npath = "var/digest.sqlite3"\n[subscribers]\ndir = "subscribers"\n')
    (root / "subscribers").mkdir()
    for name in PEOPLE:
        (root / "subscribers" / f"{name}.toml").write_text(
            'timezone = "UTC"\nsend_at = "00:00"\nempty_day = "notice"\nkeywords = ["learning", "model"]\n'
        )
    done = subprocess.run(
        [sys.executable, "-m", "digest", "ingest", str(DUMPS)], cwd=root, env=_env(), capture_output=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return root


def in_namespace(tmp_path: Path, home: Path, steps: list[str], *, size: str) -> list[Run]:
    """Copy ``home`` onto a tmpfs of ``size`` at MNT in a private mount namespace, then run ``steps``
    (shell lines; MNT names the mount) there. The output of each step is kept outside the mount."""
    mount, out = tmp_path / "mnt", tmp_path / "out"
    mount.mkdir()
    out.mkdir()
    lines = [
        "set -u",
        f"MNT={shlex.quote(str(mount))}",
        f'mount -t tmpfs -o size={size} tmpfs "$MNT"',
        f'cp -a {shlex.quote(str(home))}/. "$MNT"/',
        'cd "$MNT"',
    ]
    for number, step in enumerate(steps):
        lines.append(f"{step} > {out}/{number}.out 2> {out}/{number}.err; echo $? > {out}/{number}.code")
    script = tmp_path / "steps.sh"
    script.write_text("\n".join(lines) + "\n")
    command = ["unshare", "--user", "--map-root-user", "--mount", "--propagation", "private", "sh", str(script)]
    done = subprocess.run(command, env=_env(), capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr
    return [
        Run(int((out / f"{n}.code").read_text()), (out / f"{n}.out").read_text(), (out / f"{n}.err").read_text())
        for n in range(len(steps))
    ]


def assert_one_line(run: Run, *parts: str) -> None:
    assert run.code == 1, run
    assert "Traceback" not in run.err, run.err
    [line] = run.err.strip().splitlines()
    assert line.startswith("digest: error: ")
    for part in parts:
        assert part in line, line


@pytest.mark.parametrize(
    ("first", "step"),
    [
        (None, 97),  # every page but the first scribbled over: queries find malformed pages, or text not UTF-8
        (100, 61),  # the schema too, right after the file header
    ],
)
@pytest.mark.slow
def test_a_damaged_database_is_one_line_suggesting_recover_and_the_backup(
    tmp_path: Path, first: int | None, step: int
) -> None:
    home = make_home(tmp_path / "home")
    database = home / "var" / "digest.sqlite3"
    data = bytearray(database.read_bytes())
    start = int.from_bytes(data[16:18], "big") if first is None else first  # None: from the second page
    for offset in range(start, len(data), step):
        data[offset] = (data[offset] + 0x5A) % 256
    database.write_bytes(bytes(data))
    for command in (["status"], ["send"], ["run", "--once"], ["papers"], ["run"]):  # the daemon stops at start
        argv = [sys.executable, "-m", "digest", *command]
        done = subprocess.run(argv, cwd=home, env=_env(), capture_output=True, text=True, check=False, timeout=120)
        logged = [line for line in done.stderr.splitlines() if " started " not in line]  # the daemon's first line
        assert_one_line(
            Run(done.returncode, done.stdout, "\n".join(logged)),
            "var/digest.sqlite3: the database is damaged (",
            "restore your backup",
            "sqlite3 var/digest.sqlite3 .recover | sqlite3 var/digest.sqlite3.recovered",
        )


@pytest.mark.slow
@needs_namespaces
def test_a_read_only_folder_is_one_line_naming_it(tmp_path: Path) -> None:
    home = make_home(tmp_path / "home")
    steps = ['mount -o remount,ro "$MNT" && ' + _digest("status"), _digest("send"), _digest("ingest", str(DUMPS))]
    status, send, ingest = in_namespace(tmp_path, home, steps, size="16m")
    assert_one_line(
        status, "var/digest.sqlite3: cannot write the database", "make the file and its folder var writable"
    )
    assert_one_line(
        send, "var/digest.sqlite3.lock: cannot open the lock file (Read-only file system)", "writable by this user"
    )
    assert_one_line(ingest, "var/digest.sqlite3: cannot write the database")


@pytest.mark.slow
@needs_namespaces
def test_a_full_disk_says_so_loses_nothing_and_the_next_run_catches_up(tmp_path: Path) -> None:
    home = make_home(tmp_path / "home")
    used = sum(p.stat().st_size for p in home.rglob("*") if p.is_file())
    steps = [
        _digest("send"),  # the disk fills while the digests are stored
        _digest("status"),  # what was there is still there
        'mount -o remount,size=64m "$MNT" && ' + _digest("send"),  # room again: everything goes out
        _digest("send"),  # and only once
        "ls subscribers; for n in ada ben chen; do ls outbox/$n/new | wc -l; done",
    ]
    full, status, again, third, listing = in_namespace(tmp_path, home, steps, size=f"{used // 1024 + 64}k")
    assert_one_line(full, "var/digest.sqlite3: the disk is full (database or disk is full)", "df -h var")
    assert "cannot rollback" not in full.err
    assert status.code == 0 and "papers:      429 distinct" in status.out
    assert again.code == 0, again.err
    assert "made 3 digests" in again.out and "sent 3 messages" in again.out
    assert "made no digests (none due)" in third.out and "sent 0 messages" in third.out
    assert listing.out.split()[-3:] == ["1", "1", "1"]


@needs_namespaces
def test_a_lock_file_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    home = make_home(tmp_path / "home")
    (home / "var" / "digest.sqlite3.lock").write_text("")
    lock = "var/digest.sqlite3.lock"
    read_only = f"mount --bind {lock} {lock} && mount -o remount,ro,bind {lock}"  # the lock alone
    send, status = in_namespace(tmp_path, home, [f"{read_only} && {_digest('send')}", _digest("status")], size="16m")
    assert_one_line(
        send,
        "var/digest.sqlite3.lock: cannot open the lock file (Read-only file system)",
        "make it and its folder var writable by this user",
    )
    assert status.code == 0  # the database itself is fine
