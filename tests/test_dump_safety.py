"""Only regular files that look like a Daily Papers page become papers: links, FIFOs, notes and floods are refused."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest import events, ingest, passes, pipeline
from digest.errors import ParseError

from .conftest import DUMPS, TODAY, Result
from .deliverykit import make_world

CLI = Callable[..., Result]
SECRET = "root:x:0:0:the secret line of a file outside the dumps:/root:/bin/bash\n" * 12


def _secret_file(tmp_path: Path) -> Path:
    """A file elsewhere on the machine, standing in for /etc/passwd."""
    target = tmp_path / "elsewhere" / "passwd"
    target.parent.mkdir()
    target.write_text(SECRET)
    return target


def test_a_symlink_in_the_dumps_folder_is_refused_and_the_rest_ingested(cli: CLI, workdir: Path) -> None:
    folder = workdir / "dumps"
    folder.mkdir()
    shutil.copy(DUMPS / "003_7a5f3204ee6361bf.txt", folder / "a.txt")
    (folder / "passwd.txt").symlink_to(_secret_file(workdir))
    result = cli("ingest", folder)
    assert result.code == 1
    [line] = result.err.strip().splitlines()
    assert line == (
        f"digest: error: {folder / 'passwd.txt'}: a symbolic link; "
        "dumps are read only from regular files, so copy the file in (moved to dumps/quarantine/passwd.txt)"
    )
    assert "1 dump ingested, 1 failed; 75 papers" in result.out
    papers = cli("papers", "--json").out
    assert "secret line" not in papers and "root:x" not in papers


def test_a_symlink_named_on_the_command_line_is_refused(cli: CLI, workdir: Path) -> None:
    link = workdir / "today.txt"
    link.symlink_to(DUMPS / "003_7a5f3204ee6361bf.txt")
    result = cli("ingest", link)
    assert result.code == 1
    assert f"{link}: a symbolic link" in result.err
    assert "0 dumps ingested" in result.out


def test_a_fifo_named_on_the_command_line_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    done = subprocess.run(
        [sys.executable, "-m", "digest", "ingest", str(fifo)],
        check=False,
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,  # it used to wait for a writer for ever
    )
    assert done.returncode == 1
    assert f"digest: error: {fifo}: a FIFO, not a regular file; dumps must be regular files" in done.stderr


def test_the_daemon_quarantines_a_fifo_and_a_link_without_blocking(tmp_path: Path) -> None:
    world = make_world(tmp_path, people=0, dumps=[DUMPS / "000_b302ddefaf34c389.txt"])
    folder = tmp_path / "dumps"
    folder.mkdir()
    os.mkfifo(folder / "pipe.txt")
    (folder / "passwd.txt").symlink_to(_secret_file(tmp_path))
    lines = io.StringIO()
    watcher = pipeline.DumpWatcher(folder, settle_seconds=0)
    ingest_settings = world.settings.ingest.model_copy(update={"dumps_dir": folder})
    settings = world.settings.model_copy(update={"ingest": ingest_settings})
    done = passes.tick(settings, clock=lambda: datetime.now(UTC), log=events.EventLog(stream=lines), watcher=watcher)
    assert (done.ingested, done.quarantined) == (0, 2)
    assert sorted(p.name for p in (folder / "quarantine").iterdir() if not p.name.endswith(".error")) == [
        "passwd.txt",
        "pipe.txt",
    ]
    assert "a FIFO, not a regular file" in (folder / "quarantine" / "pipe.txt.error").read_text()
    assert (tmp_path / "elsewhere" / "passwd").read_text() == SECRET  # the target is left alone


@pytest.mark.parametrize(
    "text",
    [
        "hello world\nthis is not a dump\n",
        "Meeting notes\n\nBring the slides.\n\nLunch at noon\n\nThe room is booked.\n",
        "2026-11-23 07:30:01 INFO started\n2026-11-23 07:30:02 INFO listening on :8080\n",
    ],
)
def test_text_that_is_not_a_page_is_refused(text: str) -> None:
    with pytest.raises(ParseError, match=r"^notes\.txt: does not look like a Daily Papers dump: no page header"):
        ingest.parse(text, source="notes.txt", today=TODAY)


def test_a_page_without_its_header_is_still_a_page() -> None:
    text = (DUMPS / "001_dc7b62520b3cf1f2.txt").read_text(encoding="utf-8")
    body = text[text.index("Jan 5") + len("Jan 5") :]  # header and page day cut off; meta lines remain
    assert len(ingest.parse(body, source="cut.txt", today=TODAY).papers) == 56
    flat = (DUMPS / "000_b302ddefaf34c389.txt").read_text(encoding="utf-8").split("\n", 2)[2]
    flat = flat.removeprefix("Subscribe")  # no header, no meta lines: the abstracts read as prose
    assert len(ingest.parse(flat, source="flat.txt", today=TODAY).papers) == 226


def test_more_papers_than_the_cap_is_an_error_naming_the_setting(cli: CLI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_INGEST__MAX_PAPERS", "50")
    result = cli("ingest", DUMPS / "002_de1b89f38ace8a1e.txt")
    assert result.code == 1
    assert result.err.strip() == (
        f"digest: error: {DUMPS / '002_de1b89f38ace8a1e.txt'}: 86 papers is over the limit of 50 a dump; "
        "if the file is right, raise ingest.max_papers in the config (or DIGEST_INGEST__MAX_PAPERS)"
    )
    assert "0 dumps ingested, 1 failed" in result.out


def test_the_default_cap_refuses_a_flood_of_tiny_cards() -> None:
    flood = "\n\n".join(f"Card {n}\n\nA few words about card {n}.\n\nDec 14, 2022 1" for n in range(5001))
    with pytest.raises(ParseError, match=r"5,001 papers is over the limit of 5,000 a dump"):
        ingest.parse(flood, source="flood.txt", today=TODAY)
