"""A poisoned dump costs only itself: one line naming the file, the file set aside, and the rest of the run goes on."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest import ingest, pipeline
from digest.config import IngestSettings, Settings
from digest.errors import ParseError
from digest.ingest import safejson
from digest.store import Store

from .conftest import DUMPS, TODAY, Result

CLI = Callable[..., Result]
GOOD = DUMPS / "003_7a5f3204ee6361bf.txt"


def _item(**paper: object) -> dict[str, object]:
    return {"paper": {"id": "2411.00001", "title": "A paper", **paper}, "numComments": 1}


POISONS = {
    "upvotes of 2**63": json.dumps([_item(upvotes=2**63)]),
    "stars of -2**63-1": json.dumps([_item(githubStars=-(2**63) - 1)]),
    "an integer of 5,000 digits": '[{"paper": {"id": "2411.00001", "title": "A", "upvotes": ' + "9" * 5000 + "}}]",
    "a lone surrogate": '[{"paper": {"id": "2411.00001", "title": "A \\ud800 paper"}}]',
    "a lone surrogate in a field nobody reads": '[{"paper": {"id": "2411.00001", "title": "A"}, "x": "\\udfff"}]',
    "nesting 100,000 deep": '[{"paper": {"id": "2411.00001", "title": "A", "x": '
    + "[" * 100_000
    + "]" * 100_000
    + "}}]",
    "NaN": '[{"paper": {"id": "2411.00001", "title": "A", "upvotes": NaN}}]',
}


@pytest.mark.parametrize("poison", sorted(POISONS))
def test_a_poisoned_json_dump_is_one_line_and_quarantined_and_the_good_file_goes_in(
    cli: CLI, workdir: Path, poison: str
) -> None:
    folder = workdir / "dumps"  # the default [ingest] dumps_dir
    folder.mkdir()
    (folder / "a-bad.json").write_text(POISONS[poison], encoding="utf-8")
    shutil.copy(GOOD, folder / "b-good.txt")
    result = cli("ingest", folder / "a-bad.json", folder / "b-good.txt")
    assert result.code == 1
    [line] = result.err.strip().splitlines()
    assert line.startswith(f"digest: error: {folder / 'a-bad.json'}: ") and "Traceback" not in result.err
    assert line.endswith("(moved to dumps/quarantine/a-bad.json)")
    assert "b-good.txt: cards, 2026-03-14: 75 papers, 75 new" in result.out
    assert not (folder / "a-bad.json").exists()
    assert (folder / "quarantine" / "a-bad.json").read_text(encoding="utf-8") == POISONS[poison]
    assert "a-bad.json" in (folder / "quarantine" / "a-bad.json.error").read_text(encoding="utf-8")
    with sqlite3.connect(workdir / "var" / "digest.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM dumps").fetchone() == (1,)  # nothing of the bad file


def test_a_text_dump_with_a_count_past_any_integer_keeps_its_papers_without_that_count() -> None:
    seed = (DUMPS / "001_dc7b62520b3cf1f2.txt").read_text(encoding="utf-8")
    text = seed.replace("\nDec 14, 2022\n", "\nDec 14, 2022 " + "9" * 40 + "\n", 1)
    assert "9" * 40 in text
    dump = ingest.parse(text, source="big.txt", today=TODAY)
    assert len(dump.papers) == 56 and any("too large to be a count" in w.message for w in dump.warnings)
    assert all(p.upvotes is None or p.upvotes < 10**9 for p in dump.papers)


@pytest.mark.slow
def test_the_daemon_sets_a_poisoned_dump_aside_once_and_still_sends(cli: CLI, workdir: Path) -> None:
    folder = workdir / "dumps"
    folder.mkdir()
    (folder / "bad.json").write_text(POISONS["upvotes of 2**63"], encoding="utf-8")
    shutil.copy(GOOD, folder / "good.txt")
    (workdir / "subscribers").mkdir()
    (workdir / "subscribers" / "ada.toml").write_text(
        'name = "ada"\ntimezone = "UTC"\nsend_at = "00:00"\n[keywords]\nlanguage = 1\n', encoding="utf-8"
    )
    first = cli("run", "--once")
    assert first.code == 1  # a file failed, and said so
    quarantined = [line for line in first.err.splitlines() if " quarantined " in line]
    assert len(quarantined) == 1 and "file=bad.json" in quarantined[0] and "Traceback" not in first.err
    assert " ingested file=good.txt" in first.err and " delivered " in first.err
    second = cli("run", "--once")
    assert second.code == 0 and " quarantined " not in second.err  # never met twice


JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=20)
)
JSON_VALUES = st.recursive(
    JSON_LEAVES, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
)
PAPER = st.fixed_dictionaries(
    {"id": st.text(max_size=12), "title": st.text(max_size=30)},
    optional={"upvotes": JSON_VALUES, "githubStars": JSON_VALUES, "authors": JSON_VALUES, "summary": JSON_VALUES},
)
ITEMS = st.lists(
    st.fixed_dictionaries({"paper": PAPER}, optional={"numComments": JSON_VALUES, "extra": JSON_VALUES}), max_size=5
)


SEED_LINES = (DUMPS / "001_dc7b62520b3cf1f2.txt").read_text(encoding="utf-8").split("\n")[:80]
TEXT_DUMPS = st.lists(st.sampled_from(SEED_LINES) | st.text(max_size=60), max_size=50).map("\n".join)


def _json_dump(items: list[object], nest: int) -> str:
    text = json.dumps(items, ensure_ascii=True)  # lone surrogates travel as \\udXXX escapes, as a server sends them
    return text.replace('"paper"', '"deep": ' + "[" * nest + "]" * nest + ', "paper"', 1) if nest else text


@pytest.mark.slow
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.builds(_json_dump, ITEMS, st.integers(min_value=0, max_value=60)) | TEXT_DUMPS)
def test_dump_fuzz_is_stored_whole_or_refused_in_one_line_storing_nothing(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "fuzz.txt").write_text(text, encoding="utf-8", errors="surrogatepass")
    settings_ = Settings(database={"path": folder / "d.sqlite3"}, ingest=IngestSettings(dumps_dir=folder))
    with Store.open(settings_.database.path) as store:
        now = datetime(2026, 11, 23, tzinfo=UTC)
        [outcome] = pipeline.ingest_files([folder / "fuzz.txt"], papers=store.papers, settings=settings_, now=now)
        dumps = store.papers.status().dumps
    if outcome.error is not None:
        said = str(outcome.error)
        assert said.startswith(f"{folder / 'fuzz.txt'}: ") and "\n" not in said and "Traceback" not in said
        assert dumps == 0  # nothing of a refused file
    else:
        assert outcome.ingested is not None and dumps == 1


def test_safejson_keeps_real_surrogate_pairs_and_the_edges_of_sqlite_integers() -> None:
    found = safejson.loads('[{"t": "\\ud83d\\ude00", "n": 9223372036854775807, "m": -9223372036854775808}]', source="s")
    assert found == [{"t": "😀", "n": 2**63 - 1, "m": -(2**63)}]
    with pytest.raises(ParseError, match=r"^s: JSON nested more than 24 levels deep"):
        safejson.loads("[" * 25 + "]" * 25, source="s")
    assert safejson.loads("[" * 24 + "]" * 24, source="s") is not None


def test_control_characters_in_a_dump_never_reach_the_terminal(cli: CLI, workdir: Path) -> None:
    seed = (DUMPS / "001_dc7b62520b3cf1f2.txt").read_text(encoding="utf-8")
    first_title = ingest.parse(seed, source="s", today=TODAY).papers[0].title
    (workdir / "evil.txt").write_text(seed.replace(first_title, first_title + "\x1b[2J\x1b]0;pwned\x07", 1))
    hf = [_item(title="A \u001b[31mred\u001b[0m title", summary="An abstract \u0007 with a bell.")]
    (workdir / "evil.json").write_text(json.dumps(hf), encoding="utf-8")
    shown = cli("parse", workdir / "evil.txt", workdir / "evil.json")
    assert shown.code == 0 and "\x1b" not in shown.out + shown.err and "\x07" not in shown.out + shown.err
    assert f"{first_title}[2J]0;pwned" in shown.out and "A [31mred[0m title" in shown.out
