"""The four real seed dumps: every paper, exact text, meta fields, against golden files."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from digest import ingest
from digest.cli.show import dump_json

from .conftest import DATA, DUMPS, SEED_COUNTS, TODAY

GOLDEN = DATA / "golden"
META = re.compile(r"(^|\n)(·|\s*• \d+ authors?)(\n|$)")


def _plain_truth(path: Path) -> list[tuple[str, str]]:
    """(title, abstract) pairs read the obvious way, good enough for these clean seeds."""
    text = path.read_text(encoding="utf-8")
    if "\n\n" not in text:  # flat
        lines = text.split("\n")[2:]
        lines = [line for line in lines if line]
        lines[0] = lines[0].removeprefix("Subscribe")
        return list(zip(lines[0::2], lines[1::2], strict=True))
    blocks = [b for b in text.split("\n\n") if b.strip()]
    header_end = next(i for i, b in enumerate(blocks) if b == "byAK and the research community")
    body = [b for b in blocks[header_end + 2 :] if not META.search(b)]
    return list(zip(body[0::2], body[1::2], strict=True))


@pytest.mark.parametrize("name", sorted(SEED_COUNTS))
def test_every_paper_of_each_seed_with_exact_title_and_abstract(name: str) -> None:
    dump, _ = ingest.load(DUMPS / name, today=TODAY, max_bytes=50 << 20)
    assert len(dump.papers) == SEED_COUNTS[name]
    assert [(p.title, p.abstract) for p in dump.papers] == _plain_truth(DUMPS / name)
    assert [p.position for p in dump.papers] == list(range(1, SEED_COUNTS[name] + 1))
    assert dump.warnings == ()


@pytest.mark.parametrize("name", sorted(SEED_COUNTS))
def test_seed_matches_its_golden_parse(name: str) -> None:
    dump, _ = ingest.load(DUMPS / name, today=TODAY, max_bytes=50 << 20)
    produced = json.loads(json.dumps(dump_json(dump), default=str))
    produced["source"] = name
    golden = GOLDEN / (name.removesuffix(".txt") + ".json")
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(json.dumps(produced, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    assert produced == json.loads(golden.read_text(encoding="utf-8"))


def test_seed_layouts_and_page_days() -> None:
    found = {}
    for name in sorted(SEED_COUNTS):
        dump, _ = ingest.load(DUMPS / name, today=TODAY, max_bytes=50 << 20)
        found[name[:3]] = (dump.layout, dump.page_date and dump.page_date.isoformat())
    assert found == {
        "000": ("flat", None),
        "001": ("cards", "2026-01-05"),
        "002": ("cards", "2026-03-18"),
        "003": ("cards", "2026-03-14"),
    }


def test_meta_fields_of_the_seed_that_has_them() -> None:
    dump, _ = ingest.load(DUMPS / "001_dc7b62520b3cf1f2.txt", today=TODAY, max_bytes=50 << 20)
    papers = {p.title: p for p in dump.papers}
    first = dump.papers[0]
    assert (first.authors_count, first.published and first.published.isoformat()) == (6, "2022-12-14")
    assert all(p.published is not None for p in dump.papers)
    river = next(p for p in dump.papers if p.title.startswith("RiverMamba"))
    assert (river.organization, river.authors_count) == ("UniBonn Univerity of Bonn", None)
    assert river.published is not None and river.published.isoformat() == "2025-05-28"
    upvoted = {p.title[:20]: p.upvotes for p in dump.papers if p.upvotes is not None}
    assert upvoted == {"Unleashing the Poten": 1, "DetailFlow: 1D Coars": 2}
    assert sum(p.authors_count is not None for p in papers.values()) == 55


def test_the_cross_dump_repeats_are_one_paper_each() -> None:
    ids: dict[str, list[str]] = {}
    for name in sorted(SEED_COUNTS):
        dump, _ = ingest.load(DUMPS / name, today=TODAY, max_bytes=50 << 20)
        for paper in dump.papers:
            ids.setdefault(paper.id, []).append(name[:3])
    repeated = {k: v for k, v in ids.items() if len(v) > 1}
    assert len(ids) == 429
    assert len(repeated) == 13
    assert sorted(len(v) for v in repeated.values()) == [2] * 12 + [3]
