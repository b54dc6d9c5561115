"""Hugging Face's daily_papers JSON as a dump (layout ``hf-json``), and one paper keeping one identity
when it is seen as a title hash in a text dump and with its arXiv id in JSON, either way round."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from digest import ingest
from digest.errors import ParseError
from digest.models import Message, Ranked
from digest.store import Store, prepare

from .conftest import DUMPS, TODAY, Result

HF = Path(__file__).parent / "data" / "hf"
NOW = datetime(2026, 11, 23, 7, 30, tzinfo=UTC)
MAC_VO = "MAC-VO: Metrics-aware Covariance for Learning-based Stereo Visual Odometry"


def test_items_become_papers_with_what_the_json_brings() -> None:
    dump, _ = ingest.load(HF / "2026-11-20.json", today=TODAY, max_bytes=50 << 20)
    assert dump.layout == "hf-json" and dump.page_date == date(2026, 11, 20) and not dump.warnings
    full, bare, known = dump.papers
    assert full.id == "2411.01234" and full.title.startswith("Weather Forecasting at 0.25° — a Diffusion")
    assert full.authors == ("Zoë Müller", "Kenji Satō", "Ana Lima", "Bo Chen") and full.authors_count == 4
    assert full.abstract == (
        "We present a diffusion model for medium-range ensemble weather forecasting. "
        "It beats the operational ensemble on most variables."
    )  # the paper's own summary, its line break folded
    assert (full.upvotes, full.comments, full.github_stars, full.position) == (42, 3, 310, 1)
    assert full.github_repo == "https://github.com/example/wx-diffusion"
    assert full.project_page == "https://example.org/wx" and full.organization == "Example Lab"
    assert full.ai_summary == "A diffusion model makes calibrated medium-range weather ensembles."
    assert full.published == date(2026, 11, 19)
    assert bare.authors == () and bare.authors_count is None
    assert (bare.comments, bare.github_repo, bare.github_stars, bare.project_page, bare.ai_summary) == (None,) * 5
    assert known.id == "2409.09479" and known.title == MAC_VO


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            '[{"paper": {"id": "2411.1"}}]',
            "x.json: [0].paper.title: missing; expected Hugging Face's daily_papers JSON",
        ),
        ('[{"title": "t"}]', "x.json: [0].paper: missing;"),
        ('[{"paper": {"title": "T", "summary": "s"}}, {"paper": {"title": 3}}]', "x.json: [1].paper.title: a int"),
        ('[{"paper": {"title": "T", "upvotes": "many"}}]', "x.json: [0].paper.upvotes: 'many' is not a whole number"),
        ('{"papers": []}', "x.json: expected a list of daily papers, found dict"),
        ('[{"paper": {"title": "T"}', "x.json: not valid JSON (line 1, column 26"),
    ],
)
def test_a_document_of_the_wrong_shape_is_refused_in_one_line(document: str, message: str) -> None:
    with pytest.raises(ParseError) as caught:
        ingest.parse(document, source="x.json", today=TODAY)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_an_empty_day_is_a_dump_without_papers_not_an_error() -> None:
    dump = ingest.parse("[]\n", source="hf-2026-11-22.json", today=TODAY)
    assert dump.layout == "hf-json" and dump.papers == ()


def test_a_paper_seen_by_title_then_by_arxiv_id_is_one_paper_that_takes_the_arxiv_id(tmp_path: Path) -> None:
    text, raw_text = ingest.load(DUMPS / "000_b302ddefaf34c389.txt", today=TODAY, max_bytes=50 << 20)
    old_id = next(p.id for p in text.papers if p.title == MAC_VO)
    with Store.open(tmp_path / "d.sqlite3") as db:
        db.papers.ingest(text, sha256=raw_text.sha256, at=NOW)
        db.subscribers.save("ada", text="", profile_hash="h", source=None, at=NOW)
        assert db.feedback.vote("ada", old_id, 1, edition=None, at=NOW)  # a vote under the title hash
        mac_vo = next(p for p in text.papers if p.title == MAC_VO)
        sent = Message(subject="s", text="t", html="h", markdown="m")
        db.digests.save([prepare("ada", "2026-11-19", [Ranked(mac_vo, 1, 0.5, ())], sent, new_count=1)], at=NOW)
        dump, raw = ingest.load(HF / "2026-11-20.json", today=TODAY, max_bytes=50 << 20)
        done = db.papers.ingest(dump, sha256=raw.sha256, at=NOW)
        assert (done.record.papers, done.record.new) == (3, 2)  # MAC-VO is not new again
        paper = db.papers.get("2409.09479")
        assert paper is not None and paper.title == MAC_VO and paper.authors == ("Yuheng Qiu",)
        assert db.papers.get(old_id) == paper  # the old id still resolves
        assert {p.id for p in db.papers.archive()} >= {"2409.09479"} and old_id not in {
            p.id for p in db.papers.archive()
        }
        assert [v.paper for v in db.feedback.votes("ada")] == ["2409.09479"]  # history follows the paper
        assert db.digests.digested("ada") == {"2409.09479"}  # so it is never in a second digest
        db.feedback.vote("ada", old_id, -1, edition=None, at=NOW)  # a link sent before still reaches it
        assert [(v.paper, v.vote) for v in db.feedback.votes("ada")] == [("2409.09479", -1)]
        again = db.papers.ingest(text, sha256=raw_text.sha256 + "x", at=NOW)  # the text dump once more
        assert again.record.new == 0


def test_a_paper_seen_by_arxiv_id_first_is_not_new_in_a_text_dump(tmp_path: Path) -> None:
    with Store.open(tmp_path / "d.sqlite3") as db:
        dump, raw = ingest.load(HF / "2026-11-20.json", today=TODAY, max_bytes=50 << 20)
        db.papers.ingest(dump, sha256=raw.sha256, at=NOW)
        text, raw_text = ingest.load(DUMPS / "000_b302ddefaf34c389.txt", today=TODAY, max_bytes=50 << 20)
        done = db.papers.ingest(text, sha256=raw_text.sha256, at=NOW)
        assert done.record.new == len(text.papers) - 1
        assert db.papers.get("2409.09479") is not None
        assert sum(p.title == MAC_VO for p in db.papers.archive()) == 1


def test_digest_parse_shows_the_layout_and_fields(cli: Callable[..., Result], workdir: Path) -> None:
    (workdir / "hf.json").write_text((HF / "2026-11-20.json").read_text(encoding="utf-8"), encoding="utf-8")
    result = cli("parse", "hf.json", "--json")
    shown = json.loads(result.out)
    assert result.code == 0 and shown["layout"] == "hf-json"
    assert shown["papers"][0]["authors"][:2] == ["Zoë Müller", "Kenji Satō"]
    assert shown["papers"][0]["github_stars"] == 310


def test_a_text_page_whose_first_title_opens_with_a_bracket_is_still_a_page() -> None:
    page = (DUMPS / "001_dc7b62520b3cf1f2.txt").read_text(encoding="utf-8")
    headless = "\n\n".join(["[Re] " + block for block in page.split("\n\n")[4:10]])
    assert ingest.parse(headless, source="re.txt", today=TODAY).layout != "hf-json"
