"""The ``digest`` command through ``main([...])``: outputs, exit codes and one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import time_machine

from digest import config
from digest.store import Store

from .conftest import DUMPS, ON_EACH_DATABASE, ROOT, SEED_COUNTS, Result

CLI = Callable[..., Result]
PAPER_KEYS = [
    *("id", "title", "abstract", "authors_count", "organization", "published", "upvotes", "position"),
    *("authors", "comments", "github_repo", "github_stars", "project_page", "ai_summary"),
]

pytestmark = [pytest.mark.usefixtures("on_each_database"), ON_EACH_DATABASE]


@time_machine.travel("2026-11-23 12:00:00+00:00", tick=False)
def test_parse_json_prints_one_object_per_file_with_every_paper(cli: CLI) -> None:
    result = cli("parse", "--json", *sorted(DUMPS.iterdir()))
    assert result.code == 0
    objects = [json.loads(line) for line in result.out.splitlines()]
    assert [len(o["papers"]) for o in objects] == [SEED_COUNTS[n] for n in sorted(SEED_COUNTS)]
    assert [o["page_date"] for o in objects] == [None, "2026-01-05", "2026-03-18", "2026-03-14"]
    for obj in objects:
        assert list(obj) == ["source", "layout", "page_date", "papers", "warnings"]
        assert all(list(p) == PAPER_KEYS for p in obj["papers"])
    flat = objects[0]["papers"][0]
    assert flat["authors_count"] is None and flat["published"] is None and flat["upvotes"] is None
    assert objects[1]["papers"][0]["published"] == "2022-12-14"


def test_parse_writes_nothing(cli: CLI, workdir: Path) -> None:
    assert cli("parse", DUMPS / "003_7a5f3204ee6361bf.txt").code == 0
    assert list(workdir.iterdir()) == []


def test_parse_human_output_lists_papers_and_warnings(cli: CLI, workdir: Path) -> None:
    (workdir / "p.txt").write_text(
        "A Title Here\n\nSome abstract text. It has sentences. Several of them.\n\nLonely Title\n"
    )
    result = cli("parse", workdir / "p.txt")
    assert result.code == 0
    assert "p.txt: cards, no page day, 2 papers, 1 warning\n" in result.out
    assert "   2  Lonely Title  [no abstract]" in result.out
    assert result.err.strip().endswith("p.txt:5: warning: no abstract for 'Lonely Title'")


@time_machine.travel("2026-11-23 12:00:00+00:00", tick=False)
def test_ingest_then_again_reports_new_then_nothing(cli: CLI) -> None:
    first = cli("ingest", DUMPS)
    assert first.code == 0, first.err
    assert first.out.splitlines()[:4] == [
        "000_b302ddefaf34c389.txt: flat, no page day: 226 papers, 226 new, 0 already seen",
        "001_dc7b62520b3cf1f2.txt: cards, 2026-01-05: 56 papers, 56 new, 0 already seen",
        "002_de1b89f38ace8a1e.txt: cards, 2026-03-18: 86 papers, 84 new, 2 already seen",
        "003_7a5f3204ee6361bf.txt: cards, 2026-03-14: 75 papers, 63 new, 12 already seen",
    ]
    assert "total: 4 dumps ingested; 443 papers, 429 new, 14 already seen" in first.out
    before = _table_counts()
    second = cli("ingest", DUMPS)
    assert second.code == 0
    assert second.out.count("nothing changed") == 4
    assert "0 papers, 0 new" in second.out
    assert _table_counts() == before == {"dumps": 4, "papers": 429, "sightings": 443}


def test_ingest_json(cli: CLI) -> None:
    result = cli("ingest", "--json", DUMPS / "001_dc7b62520b3cf1f2.txt", DUMPS / "001_dc7b62520b3cf1f2.txt")
    first, second = (json.loads(line) for line in result.out.splitlines())
    assert (first["status"], first["papers"], first["new"], first["already_seen"]) == ("ingested", 56, 56, 0)
    assert (second["status"], second["new"]) == ("repeat", 0)


def test_a_folder_with_one_bad_file_ingests_the_good_ones(cli: CLI, workdir: Path) -> None:
    folder = workdir / "dumps"
    folder.mkdir()
    shutil.copy(DUMPS / "002_de1b89f38ace8a1e.txt", folder / "a.txt")
    (folder / "b.txt").write_bytes("Titre \u00e9t\u00e9\n".encode("latin-1"))
    shutil.copy(DUMPS / "003_7a5f3204ee6361bf.txt", folder / "c.txt")
    (folder / ".hidden.txt").write_text("ignored")
    (folder / "d.txt.tmp").write_text("still being written")
    result = cli("ingest", folder)
    assert result.code == 1
    assert [line.split(":")[0] for line in result.out.splitlines()[:2]] == ["a.txt", "c.txt"]
    assert "total: 2 dumps ingested, 1 failed; 161 papers, 158 new, 3 already seen" in result.out
    errors = result.err.strip().splitlines()
    assert errors == [
        f"digest: error: {folder / 'b.txt'}: not UTF-8 (byte 0xe9 at offset 6); "
        "re-save it as UTF-8 (e.g. iconv -f ISO-8859-1 -t UTF-8) (moved to dumps/quarantine/b.txt)"
    ]  # the dumps folder's bad file is set aside, as the daemon does, so nothing meets it again
    assert not (folder / "b.txt").exists() and (folder / "quarantine" / "b.txt.error").is_file()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(b""), "the file is empty"),
        (lambda p: p.write_bytes(b"\x00\x01binary"), "binary data"),
        (lambda p: p.write_text("new\n\nSubscribe\n\nMar 14\n"), "no papers found"),
        (lambda p: p.mkdir(), "folder has no dump files"),
    ],
)
def test_bad_inputs_give_one_line_and_exit_1(
    cli: CLI, workdir: Path, make: Callable[[Path], object], message: str
) -> None:
    make(workdir / "bad.txt")
    result = cli("ingest", workdir / "bad.txt")
    assert result.code == 1
    [line] = result.err.strip().splitlines()
    assert line.startswith("digest: error: ") and message in line and "bad.txt" in line


def test_a_60_mb_file_is_refused(cli: CLI, workdir: Path) -> None:
    with (workdir / "big.txt").open("wb") as handle:
        handle.truncate(60 * 1_048_576)
    result = cli("parse", workdir / "big.txt")
    assert result.code == 1
    assert "big.txt: 60.0 MB is over the 50 MB limit" in result.err


def test_size_cap_comes_from_config(cli: CLI, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_INGEST__MAX_SIZE_MB", "0.1")
    result = cli("parse", DUMPS / "000_b302ddefaf34c389.txt")
    assert result.code == 1
    assert "over the 0.1 MB limit" in result.err


def test_papers_and_status(cli: CLI) -> None:
    assert "last ingest: never" in cli("status").out
    cli("ingest", DUMPS)
    new = cli("papers", "--new-in", "003_7a5f3204ee6361bf.txt", "--json")
    rows = [json.loads(line) for line in new.out.splitlines()]
    assert len(rows) == 63
    assert rows[0]["title"] == "Online Unsupervised Feature Learning for Visual Tracking"
    assert rows[0]["first_dump"].endswith("003_7a5f3204ee6361bf.txt")
    assert len(cli("papers", "--limit", "3").out.splitlines()) == 3
    status = json.loads(cli("status", "--json").out)
    assert (status["dumps"], status["papers"], status["sightings"]) == (4, 429, 443)
    assert status["database"] == config.load().database.shown  # var/digest.sqlite3, or the URL
    assert status["last_ingest"]["new"] == 63
    text = cli("status").out
    assert "papers:      429 distinct, 443 sightings" in text


def test_config_flag_and_environment_choose_the_database(
    cli: CLI, workdir: Path, monkeypatch: pytest.MonkeyPatch, on_each_database: str
) -> None:
    (workdir / "c.toml").write_text('[database]\npath = "from-file.sqlite3"\n')
    cli("ingest", DUMPS / "001_dc7b62520b3cf1f2.txt", "--config", workdir / "c.toml")
    if on_each_database == "postgresql":  # DIGEST_DATABASE__URL wins over any path
        assert not (workdir / "from-file.sqlite3").exists()
        assert "56 papers" in cli("status", "-c", workdir / "c.toml").out
        monkeypatch.delenv("DIGEST_DATABASE__URL")
        cli("ingest", DUMPS / "001_dc7b62520b3cf1f2.txt", "--config", workdir / "c.toml")
    assert (workdir / "from-file.sqlite3").exists()
    monkeypatch.setenv("DIGEST_DATABASE__PATH", str(workdir / "from-env.sqlite3"))
    cli("-c", workdir / "c.toml", "ingest", DUMPS / "001_dc7b62520b3cf1f2.txt")
    assert (workdir / "from-env.sqlite3").exists()


@pytest.mark.parametrize(
    "args",
    [[], ["frobnicate"], ["parse"], ["papers", "--limit", "0"], ["papers", "--limit", "x"], ["ingest", "--bogus", "x"]],
)
def test_bad_usage_exits_2_with_one_line(cli: CLI, args: list[str]) -> None:
    result = cli(*args)
    assert result.code == 2
    [line] = result.err.strip().splitlines()
    assert line.startswith("digest: error: ") and "--help" in line


def test_unknown_dump_for_new_in_is_usage(cli: CLI) -> None:
    result = cli("papers", "--new-in", "nope.txt")
    assert result.code == 2
    assert "--new-in 'nope.txt': no such dump" in result.err


def test_bad_config_is_one_line_and_verbose_adds_the_traceback(cli: CLI, workdir: Path) -> None:
    (workdir / "c.toml").write_text("[database]\nwrong = 1\n")
    plain = cli("--config", workdir / "c.toml", "status")
    assert plain.code == 1
    assert plain.err.strip().splitlines() == [
        f"digest: error: {workdir / 'c.toml'}: key 'database.wrong': unknown key; "
        "check its spelling against config.example.toml"
    ]
    verbose = cli("--verbose", "--config", workdir / "c.toml", "status")
    assert "Traceback (most recent call last)" in verbose.err
    assert verbose.err.strip().endswith("check its spelling against config.example.toml")


def test_help_and_version(cli: CLI) -> None:
    top = cli("--help")
    assert top.code == 0
    for command in ("parse", "ingest", "papers", "status"):
        assert command in top.out
    assert "DIGEST_DATABASE__PATH" in top.out
    sub = cli("ingest", "--help")
    assert sub.code == 0 and "Ingesting the same bytes again changes nothing" in sub.out
    version = cli("--version")
    assert version.code == 0 and version.out.startswith("paper-digest ")


def _table_counts() -> dict[str, int]:
    with Store.open(config.load().database.location) as store:
        conn = store.db.conn
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("dumps", "papers", "sightings")}


@pytest.mark.parametrize("asked", [["--version"], ["--help"], ["fetch", "--help"], ["send", "--help"]])
def test_help_and_version_load_no_numpy_scikit_learn_or_jinja(asked: list[str]) -> None:
    """--help and --version answer at once: the heavy libraries load only for the commands that use them."""
    done, loaded = _imported(asked)
    assert done.returncode == 0 and ("paper-digest" in done.stdout or "usage: digest" in done.stdout)
    assert not loaded & {"numpy", "scipy", "sklearn", "jinja2", "css_inline", "httpx", "pydantic", "rich"}


def _imported(asked: list[str], cwd: Path | None = None) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``digest ASKED`` under ``python -X importtime``: how it went, and every module it imported."""
    done = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-c",
            f"import sys; from digest.cli import main; sys.exit(main({asked!r}))",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
    )
    loaded = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    return done, loaded


@pytest.mark.parametrize(
    "asked",
    [
        ["status"],
        ["deliveries"],
        ["papers"],
        ["subscribers"],
        ["retry", "--all"],
        ["parse", str(DUMPS / "001_dc7b62520b3cf1f2.txt")],
        ["check", str(ROOT / "examples" / "subscribers" / "ada.toml")],
    ],
)
@pytest.mark.slow
def test_commands_that_do_not_rank_load_no_numpy_scikit_learn_jinja_or_httpx(asked: list[str], workdir: Path) -> None:
    """A command that neither ranks, renders nor calls out starts without those libraries."""
    done, loaded = _imported(asked, cwd=workdir)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "digest.cli" in loaded  # the measurement saw the command's imports
    assert not loaded & {"numpy", "scipy", "sklearn", "jinja2", "css_inline", "httpx", "apscheduler", "starlette"}


def test_init_sets_up_a_new_installation_that_works(cli: CLI, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made = cli("init", "site")
    assert made.code == 0, made.err
    assert {p.name for p in (workdir / "site").iterdir()} == {"digest.toml", "subscribers", "dumps", "var"}
    assert "  cd site\n  edit subscribers/example.toml.off " in made.out
    assert "  mv subscribers/example.toml.off subscribers/you.toml " in made.out
    settings = config.load(workdir / "site" / "digest.toml")  # the shipped example, every key commented
    assert settings.ingest.dumps_dir == Path("dumps") and settings.database.path == Path("var/digest.sqlite3")
    checked = cli("check", "site/subscribers/example.toml.off")
    assert checked.code == 0, checked.err
    monkeypatch.chdir(workdir / "site")
    assert cli("ingest", DUMPS).code == 0
    dry = cli("send", "--dry-run")
    assert dry.code == 0 and dry.out.startswith("would make no digests")  # nobody before the example is renamed
    Path("subscribers/example.toml.off").rename("subscribers/you.toml")
    live = cli("send", "--dry-run").out
    assert live.startswith("would make 1 digest: ") and "  you -> " in live
    monkeypatch.chdir(workdir)
    again = cli("init", "site")
    assert again.code == 2 and again.err.strip().endswith(
        "digest.toml: already there; this folder is set up (digest status shows its state)"
    )
    assert (workdir / "site" / "digest.toml").read_text(encoding="utf-8") == (ROOT / "config.example.toml").read_text(
        encoding="utf-8"
    )
