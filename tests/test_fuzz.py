"""Fuzzing ``parse``: on any text it returns a Dump or raises its own ParseError, nothing else."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest import ingest
from digest.errors import ParseError
from digest.ingest.hfjson import looks_like_json
from digest.models import Dump

from .conftest import DUMPS, TODAY

SEED = (DUMPS / "001_dc7b62520b3cf1f2.txt").read_text(encoding="utf-8")
SEED_LINES = SEED.split("\n")[:120]
FLAT_LINES = (DUMPS / "000_b302ddefaf34c389.txt").read_text(encoding="utf-8").split("\n")[:40]
NOISE = ["", "·", "•", "  • 1 author", "Mar 14", "Dec 14, 2022 7", "Subscribe", "new", "\u00a0", "\ufeff", "\r", "42"]


def check(dump_or_error: Dump | ParseError, text: str) -> None:
    if looks_like_json(text):  # Hugging Face's JSON: refused in one line naming the file, or read as such
        said = str(dump_or_error)
        assert said.startswith("fuzz.txt: ") and "\n" not in said if isinstance(dump_or_error, ParseError) else True
        assert isinstance(dump_or_error, ParseError) or dump_or_error.layout == "hf-json"
        return
    if isinstance(dump_or_error, ParseError):
        assert str(dump_or_error).startswith(("fuzz.txt: no papers found", "fuzz.txt: does not look like a Daily"))
        return
    dump = dump_or_error
    line_count = text.count("\n") + text.count("\r") + 1
    assert dump.papers
    assert [p.position for p in dump.papers] == list(range(1, len(dump.papers) + 1))
    assert len({p.id for p in dump.papers}) == len(dump.papers)
    for paper in dump.papers:
        assert paper.title and paper.title == paper.title.strip()
        assert paper.norm_title and paper.id.startswith("t:")
        assert paper.abstract is None or paper.abstract.strip()
    assert all(1 <= w.line <= line_count for w in dump.warnings)


def run(text: str) -> None:
    try:
        result: Dump | ParseError = ingest.parse(text, source="fuzz.txt", today=TODAY)
    except ParseError as e:
        result = e
    check(result, text)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_random_text(text: str) -> None:
    run(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(SEED_LINES + NOISE) | st.text(max_size=80), max_size=60))
def test_shuffled_lines_of_a_real_dump(lines: list[str]) -> None:
    run("\n".join(lines))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([SEED_LINES, FLAT_LINES]),
    st.lists(
        st.tuples(
            st.sampled_from(["delete", "duplicate", "insert", "cut", "swap"]),
            st.integers(0, 10**6),
            st.text(max_size=20),
        ),
        max_size=12,
    ),
    st.sampled_from(["\n", "\r\n", "\r"]),
)
def test_mutated_real_dumps(base: list[str], edits: list[tuple[str, int, str]], newline: str) -> None:
    lines = list(base)
    for op, where, noise in edits:
        i = where % len(lines) if lines else 0
        if op == "delete" and lines:
            del lines[i]
        elif op == "duplicate" and lines:
            lines.insert(i, lines[i])
        elif op == "insert":
            lines.insert(i, noise)
        elif op == "cut" and lines:
            lines[i] = lines[i][: where % (len(lines[i]) + 1)]
        elif op == "swap" and len(lines) > 1:
            j = (i + 1) % len(lines)
            lines[i], lines[j] = lines[j], lines[i]
    run(newline.join(lines))


@pytest.mark.slow
def test_a_real_dump_cut_at_every_hundredth_character_never_crashes() -> None:
    for end in range(0, len(SEED), 100):
        run(SEED[:end])
