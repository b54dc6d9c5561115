"""Each variation a real page shows: the parse loses nothing and invents nothing, and says what it skipped."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest import ingest
from digest.errors import ParseError
from digest.models import Dump

from .conftest import TODAY
from .dumpgen import Card, cards, flat

ABSTRACT = (
    "Diffusion models generate images by reversing a noising process. We show that a smaller "
    "network suffices when trained with a better schedule. Results on three benchmarks confirm it."
)
PAPERS = [
    Card("Fast Diffusion with Small Networks", ABSTRACT, "6 authors", "Dec 14, 2022"),
    Card("Quantization for Everyone", ABSTRACT.replace("Diffusion", "Quantized"), "1 author", "Jan 2, 2023", 17),
    Card(
        "A Global Weather Model", ABSTRACT.replace("images", "forecasts"), "UniBonn University of Bonn", "May 28, 2025"
    ),
]


def parse(text: str, *, today: date = TODAY) -> Dump:
    return ingest.parse(text, source="test.txt", today=today)


def fields(dump: Dump) -> list[tuple[object, ...]]:
    return [
        (p.title, p.abstract, p.authors_count, p.organization, p.published and p.published.isoformat(), p.upvotes)
        for p in dump.papers
    ]


EXPECTED = [
    ("Fast Diffusion with Small Networks", ABSTRACT, 6, None, "2022-12-14", None),
    ("Quantization for Everyone", ABSTRACT.replace("Diffusion", "Quantized"), 1, None, "2023-01-02", 17),
    (
        "A Global Weather Model",
        ABSTRACT.replace("images", "forecasts"),
        None,
        "UniBonn University of Bonn",
        "2025-05-28",
        None,
    ),
]


def test_clean_cards_dump() -> None:
    dump = parse(cards(PAPERS))
    assert fields(dump) == EXPECTED
    assert (dump.layout, dump.page_date, dump.warnings) == ("cards", date(2026, 3, 14), ())


def test_crlf_line_ends() -> None:
    assert fields(parse(cards(PAPERS).replace("\n", "\r\n"))) == EXPECTED


def test_old_mac_cr_line_ends() -> None:
    assert fields(parse(cards(PAPERS).replace("\n", "\r"))) == EXPECTED


def test_byte_order_mark() -> None:
    dump = parse("\ufeff" + cards(PAPERS))
    assert fields(dump) == EXPECTED
    assert dump.page_date == date(2026, 3, 14)


def test_stray_and_non_breaking_spaces() -> None:
    text = (
        cards(PAPERS)
        .replace("Fast Diffusion", "  Fast\u00a0 Diffusion")
        .replace("Quantization for", "Quantization\u202ffor ")
    )
    text = text.replace("\n·\n", "\n \u00a0·\t\n").replace("Mar 14", "Mar\u00a014  ")
    dump = parse(text)
    assert fields(dump) == EXPECTED
    assert dump.page_date == date(2026, 3, 14)


def test_zero_width_characters_are_dropped() -> None:
    assert fields(parse(cards(PAPERS).replace("Fast Diffusion", "Fast\u200b Diffusion"))) == EXPECTED


def test_repeated_header_lines_in_the_header_are_silent() -> None:
    text = cards(PAPERS).replace("Subscribe", "Subscribe\n\nGet trending papers in your email inbox!\n\nSubscribe")
    dump = parse(text)
    assert fields(dump) == EXPECTED
    assert dump.warnings == ()


def test_header_repeated_mid_page_is_skipped_with_a_warning() -> None:
    first, rest = cards(PAPERS[:1]), cards(PAPERS[1:], header=False)
    dump = parse(first + "\n\nGet trending papers in your email inbox!\n\nMar 14\n\n" + rest)
    assert fields(dump) == EXPECTED
    assert [w.message.split(";")[0] for w in dump.warnings] == [
        "page header 'Get trending papers in your email inbox!' repeated",
        "page header 'Mar 14' repeated",
    ]


def test_no_header_at_all() -> None:
    dump = parse(cards(PAPERS, header=False))
    assert fields(dump) == EXPECTED
    assert dump.page_date is None


def test_header_without_page_day() -> None:
    dump = parse(cards(PAPERS, page_day=None))
    assert (fields(dump), dump.page_date) == (EXPECTED, None)


def test_count_after_the_date_is_the_upvote_count() -> None:
    dump = parse(cards([Card("A Paper About Things", ABSTRACT, "3 authors", "Mar 10, 2025", 1234)]))
    assert dump.papers[0].upvotes == 1234


def test_upvote_count_on_its_own_line() -> None:
    text = cards([Card("A Paper About Things", ABSTRACT, "3 authors", "Mar 10, 2025")]) + "\n42"
    assert parse(text).papers[0].upvotes == 42


def test_author_count_and_organization_on_one_line() -> None:
    dump = parse(cards([Card("A Paper About Things", ABSTRACT, "4 authors | Google DeepMind", "Mar 10, 2025")]))
    assert (dump.papers[0].authors_count, dump.papers[0].organization) == (4, "Google DeepMind")


def test_missing_abstract_between_cards_keeps_the_title_and_warns() -> None:
    papers = [PAPERS[0], Card("No Abstract Here", None, "2 authors", "Feb 1, 2024"), PAPERS[2]]
    dump = parse(cards(papers))
    assert [p.title for p in dump.papers] == [PAPERS[0].title, "No Abstract Here", PAPERS[2].title]
    assert dump.papers[1].abstract is None
    assert dump.papers[1].authors_count == 2
    assert [w.message for w in dump.warnings] == ["no abstract for 'No Abstract Here'"]


@pytest.mark.parametrize("layout", [cards, flat])
def test_missing_abstract_without_meta_blocks(layout: object) -> None:
    papers = [Card("First Title Here"), Card("Lonely Title Without Text", None), Card("Third Title Here")]
    dump = parse(layout(papers))  # type: ignore[operator]
    assert [(p.title, p.abstract is None) for p in dump.papers] == [
        ("First Title Here", False),
        ("Lonely Title Without Text", True),
        ("Third Title Here", False),
    ]
    assert len(dump.warnings) == 1
    assert "no abstract" in dump.warnings[0].message


def test_missing_abstract_on_the_last_paper() -> None:
    dump = parse(flat([Card("First Title Here"), Card("Last Title Alone", None)]))
    assert [p.abstract is None for p in dump.papers] == [False, True]
    assert len(dump.warnings) == 1


def test_flat_layout_with_glued_subscribe() -> None:
    dump = parse(flat([Card(p.title, p.abstract) for p in PAPERS]))
    assert dump.layout == "flat"
    assert [(p.title, p.abstract) for p in dump.papers] == [(e[0], e[1]) for e in EXPECTED]


@pytest.mark.parametrize(
    ("first_title", "warned"),
    [("mPLUG-Owl: Modularization", False), ("3D Gaussians", False), ("Éclair: Fast", False), ("subscribers as", True)],
)
def test_flat_layout_glued_subscribe_before_any_first_word(first_title: str, warned: bool) -> None:
    dump = parse(flat([Card(first_title), Card("Second Paper Title")]))
    expected = ("Subscribe" if warned else "") + first_title
    assert [p.title for p in dump.papers] == [expected, "Second Paper Title"]
    assert [w.message.endswith("kept whole") for w in dump.warnings] == ([True] if warned else [])


def test_flat_layout_with_a_stray_blank_line_stays_flat() -> None:
    papers = [Card(f"Paper Number {n} Title", ABSTRACT) for n in range(6)]
    text = flat(papers).replace(ABSTRACT + "\nPaper Number 3", ABSTRACT + "\n\nPaper Number 3")
    dump = parse(text)
    assert dump.layout == "flat"
    assert [(p.title, p.abstract) for p in dump.papers] == [(c.title, c.abstract) for c in papers]
    assert dump.warnings == ()


def test_html_and_latex_looking_titles_are_kept_verbatim() -> None:
    titles = [
        "<b>Bold</b> Claims & <i>Results</i> for x < y",
        r"$\alpha$-Net: Learning with {BERT} and \textbf{Transformers}",
        "Résumé: Accented Étude of O(n^2) Algorithms",
    ]
    dump = parse(cards([Card(t, ABSTRACT) for t in titles]))
    assert [p.title for p in dump.papers] == titles
    assert dump.papers[1].norm_title == "alpha net learning with bert and transformers"
    assert ingest.normalise_title("α-Net: Learning with BERT and Transformers") == dump.papers[1].norm_title


def test_title_is_identity_across_case_punctuation_and_spacing() -> None:
    a = ingest.normalise_title("Pangu-Weather: A 3D High-Resolution Model")
    b = ingest.normalise_title("pangu weather  a 3d high resolution MODEL.")
    assert a == b == "pangu weather a 3d high resolution model"
    assert ingest.paper_id(a) == ingest.paper_id(b)
    assert ingest.paper_id(a).startswith("t:")
    assert ingest.paper_id(a, arxiv_id="2211.02556") == "2211.02556"


def test_the_same_paper_twice_on_one_page_is_kept_once_with_a_warning() -> None:
    dump = parse(cards([PAPERS[0], PAPERS[1], Card(PAPERS[0].title.upper(), ABSTRACT)]))
    assert [p.title for p in dump.papers] == [PAPERS[0].title, PAPERS[1].title]
    assert "repeats the paper at line" in dump.warnings[0].message


def test_abstract_wrapped_over_two_lines_of_one_block_is_joined() -> None:
    cut = ABSTRACT.index(" ", 110)
    text = cards([PAPERS[0]]).replace(ABSTRACT, ABSTRACT[:cut] + "\n" + ABSTRACT[cut + 1 :])
    dump = parse(text)
    assert dump.papers[0].abstract == ABSTRACT
    assert dump.warnings == ()


def test_abstract_in_two_paragraphs_is_joined_and_reported() -> None:
    text = cards([PAPERS[0]]).replace(ABSTRACT, ABSTRACT + "\n\n" + ABSTRACT)
    dump = parse(text)
    assert dump.papers[0].abstract == ABSTRACT + "\n\n" + ABSTRACT
    assert [w.message for w in dump.warnings] == ["joined to the abstract of 'Fast Diffusion with Small Networks'"]


def test_text_before_any_title_is_reported_not_invented_into_a_paper() -> None:
    text = cards(PAPERS[:1]).replace("Mar 14", "Mar 14\n\n" + ABSTRACT)
    dump = parse(text)
    assert fields(dump) == EXPECTED[:1]
    assert dump.warnings[0].message.startswith("text that belongs to no paper skipped")
    assert dump.warnings[0].line == 13


def test_meta_block_with_no_paper_before_it_is_reported() -> None:
    text = cards(PAPERS[:1]).replace("Mar 14", "Mar 14\n\n  • 3 authors\n·\nJan 1, 2020")
    dump = parse(text)
    assert fields(dump) == EXPECTED[:1]
    assert dump.warnings[0].message == "author/date block with no paper before it; skipped"


def test_impossible_publication_date_is_reported() -> None:
    dump = parse(cards([Card("A Paper About Things", ABSTRACT, "3 authors", "Feb 30, 2025")]))
    assert dump.papers[0].published is None
    assert dump.warnings[0].message == "not a real date: 'Feb 30, 2025'"


def test_truncated_mid_card_keeps_what_is_there_and_says_so() -> None:
    text = cards(PAPERS)
    cut = text[: text.index(PAPERS[2].abstract or "") + 40]
    dump = parse(cut)
    assert [p.title for p in dump.papers] == [p.title for p in PAPERS]
    assert dump.papers[2].abstract == (PAPERS[2].abstract or "")[:40]
    assert "may be cut short" in dump.warnings[-1].message


def test_warnings_carry_the_line_number_of_the_problem() -> None:
    text = cards([PAPERS[0], Card("Lonely", None, "2 authors", "Feb 1, 2024")])
    dump = parse(text)
    lonely_line = text.split("\n").index("Lonely") + 1
    assert [w.line for w in dump.warnings] == [lonely_line]


@pytest.mark.parametrize(
    ("page_day", "today", "expected"),
    [
        ("Mar 14", date(2026, 11, 23), date(2026, 3, 14)),
        ("Nov 23", date(2026, 11, 23), date(2026, 11, 23)),
        ("Dec 31", date(2027, 1, 1), date(2026, 12, 31)),
        ("Nov 24", date(2026, 11, 23), date(2025, 11, 24)),
        ("Feb 29", date(2026, 11, 23), date(2024, 2, 29)),
        ("March 14", date(2026, 11, 23), date(2026, 3, 14)),
    ],
)
def test_page_day_takes_the_latest_year_on_or_before_the_ingest_day(page_day: str, today: date, expected: date) -> None:
    assert parse(cards(PAPERS[:1], page_day=page_day), today=today).page_date == expected


@pytest.mark.parametrize(
    "text",
    ["", "\n\n\n", "new\n\nSubscribe\n\nMar 14\n", "  • 3 authors\n·\nJan 1, 2020", "·\n·\n·"],
)
def test_text_without_papers_is_a_parse_error_naming_the_source(text: str) -> None:
    with pytest.raises(ParseError, match=r"^test\.txt: no papers found"):
        parse(text)


# --- generated dumps: whatever the papers, the parse gives back exactly them ---------

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789éöüçñαβγ"
_WORD = st.text(alphabet=_LETTERS, min_size=2, max_size=9)
# Titles start with a capital or a digit, as real ones do ("mPLUG" style words are tested on their own).
_TITLE = st.lists(_WORD, min_size=2, max_size=14).map(lambda words: " ".join(words)[0].upper() + " ".join(words)[1:])
_SENTENCE = st.lists(_WORD, min_size=6, max_size=20).map(lambda words: " ".join(words).capitalize() + ".")
_ABSTRACT = st.lists(_SENTENCE, min_size=3, max_size=8).map(" ".join).filter(ingest.looks_like_abstract)
_WHO = st.one_of(st.none(), st.integers(1, 60).map(lambda n: f"{n} author{'s' if n > 1 else ''}"))
_DATE = st.one_of(st.none(), st.dates(date(1990, 1, 1), date(2030, 12, 31)).map(lambda d: d.strftime("%b %-d, %Y")))
_CARD = st.builds(Card, title=_TITLE, abstract=_ABSTRACT, who=_WHO, published=_DATE, upvotes=st.none())
_PAPERS = st.lists(_CARD, min_size=1, max_size=12, unique_by=lambda c: ingest.normalise_title(c.title)).filter(
    lambda cs: all(ingest.normalise_title(c.title) for c in cs)
)


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(papers=_PAPERS, crlf=st.booleans(), bom=st.booleans())
def test_generated_cards_dumps_parse_back_exactly(papers: list[Card], crlf: bool, bom: bool) -> None:
    text = cards(papers)
    text = ("\ufeff" if bom else "") + (text.replace("\n", "\r\n") if crlf else text)
    dump = parse(text)
    assert [(p.title, p.abstract) for p in dump.papers] == [(c.title, c.abstract) for c in papers]
    assert [p.published and p.published.strftime("%b %-d, %Y") for p in dump.papers] == [c.published for c in papers]
    who = [c.who and int(c.who.split()[0]) for c in papers]
    assert [p.authors_count for p in dump.papers] == who
    has_meta = [c.who is not None or c.published is not None for c in papers]
    looks_cut = len(papers) >= 2 and not has_meta[-1] and all(has_meta[:-1])
    assert [w.message.endswith("may be cut short") for w in dump.warnings] == ([True] if looks_cut else [])


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(papers=_PAPERS)
def test_generated_flat_dumps_parse_back_exactly(papers: list[Card]) -> None:
    dump = parse(flat(papers))
    assert [(p.title, p.abstract) for p in dump.papers] == [(c.title, c.abstract) for c in papers]
    assert dump.warnings == ()
