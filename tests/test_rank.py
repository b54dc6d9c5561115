"""The ranker on real seed papers and real scikit-learn: relevance, reasons, exclusions, no repeats."""

from __future__ import annotations

import dataclasses
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest import ingest, profiles, rank, render
from digest.models import Dump, Paper, Profile, Ranked
from digest.rank.postings import Postings
from digest.text import stem

from .conftest import DUMPS, ROOT, TODAY

ABSTRACT = "We study a problem in machine learning. Our method is simple. Experiments on benchmarks show it works."


@cache
def seed_days() -> tuple[Dump, ...]:
    return tuple(ingest.load(p, today=TODAY, max_bytes=50 << 20)[0] for p in sorted(DUMPS.glob("*.txt")))


@cache
def archive() -> tuple[Paper, ...]:
    return tuple({p.id: p for d in seed_days() for p in d.papers}.values())


@cache
def corpus() -> rank.Corpus:
    return rank.Corpus(archive())


def bench_profiles() -> list[Profile]:
    return [profiles.load(p)[0] for p in sorted((ROOT / "bench" / "profiles").glob("*.toml"))]


def paper(title: str, abstract: str = ABSTRACT, position: int = 1, upvotes: int | None = None) -> Paper:
    norm = ingest.normalise_title(title)
    return Paper(ingest.paper_id(norm), title, norm, abstract, position=position, upvotes=upvotes)


def ranked(papers: list[Paper], profile: Profile, **options: object) -> list[Ranked]:
    return rank.rank(papers, profile, corpus=corpus(), normalise_title=ingest.normalise_title, **options)  # type: ignore[arg-type]


def profile(keywords: dict[str, float], **fields: object) -> Profile:
    return Profile(name="t", keywords=tuple(keywords.items()), **fields)  # type: ignore[arg-type]


@pytest.mark.slow
def test_on_the_seeds_every_item_has_a_reason() -> None:
    for person in bench_profiles():
        for day in seed_days():
            for keep_all in (False, True):
                for item in ranked(list(day.papers), person, keep_all=keep_all):
                    assert item.why, f"{person.name}: {item.paper.title} has no reason"


def test_chosen_items_respect_min_score_and_max_items_in_score_order() -> None:
    compression = next(p for p in bench_profiles() if p.name == "compression")
    person = dataclasses.replace(compression, max_items=4, min_score=0.2)
    items = ranked(list(seed_days()[2].papers), person)
    assert 0 < len(items) <= 4
    assert all(i.score >= 0.2 for i in items)
    assert [i.score for i in items] == sorted((i.score for i in items), reverse=True)
    assert [i.rank for i in items] == list(range(1, len(items) + 1))


def test_the_chosen_items_are_the_head_of_the_full_ranking() -> None:
    # rank_all picks every profile's top items at once; one by one, they must be what a full sort gives.
    people = [dataclasses.replace(p, max_items=n) for p in bench_profiles() for n in (1, 3, 10)]
    for day in seed_days():
        papers = list(day.papers)
        chosen = rank.rank_all(papers, people, corpus=corpus(), normalise_title=ingest.normalise_title)
        for person, items in zip(people, chosen, strict=True):
            full = [i for i in ranked(papers, person, keep_all=True) if i.score >= person.min_score]
            assert items == full[: person.max_items], person.name


def test_equal_scores_at_the_cut_are_settled_by_id_not_by_chance() -> None:
    # Same position (two pages can both have a #3), same text but one title word: equal scores.
    day = [paper(f"Sparse Attention Variant {word}", position=3) for word in "ABCDEFGH"]
    items = ranked(day, profile({"sparse attention": 1.0}, max_items=3))
    assert len({i.score for i in ranked(day, profile({"sparse attention": 1.0}), keep_all=True)}) == 1
    assert [i.paper.id for i in items] == sorted(p.id for p in day)[:3]


def test_compression_interest_finds_pruning_papers_first() -> None:
    person = next(p for p in bench_profiles() if p.name == "compression")
    top = [i.paper.title for i in ranked(list(seed_days()[2].papers), person)[:5]]
    assert all(any(w in t.lower() for w in ("prun", "quantiz", "compress", "sparse")) for t in top), top


def test_title_hits_count_more_than_abstract_hits() -> None:
    in_title = paper("Graph Transformers for Molecules", position=2)
    in_abstract = paper(
        "A Study of Molecules", "We apply graph transformers to molecules. It works. Really well.", position=1
    )
    items = ranked([in_abstract, in_title], profile({"graph transformers": 1.0}), keep_all=True)
    assert [i.paper.title for i in items] == [in_title.title, in_abstract.title]
    assert items[0].why[0].where == ("title", "abstract") or items[0].why[0].where == ("title",)


def test_a_phrase_counts_more_than_its_words_apart() -> None:
    together = paper("Diffusion Model Distillation", position=2)
    apart = paper("Model Editing via Diffusion of Gradients", position=1)
    items = ranked([apart, together], profile({"diffusion model": 1.0}), keep_all=True)
    assert items[0].paper == together
    assert items[1].why[0].detail == "only diffusion"  # "model" is too common to count


def test_inflections_meet() -> None:
    items = ranked([paper("Forecasting Floods with Pruned Networks")], profile({"flood forecast": 1.0, "pruning": 1.0}))
    assert {r.label for r in items[0].why if r.kind == "keyword"} == {"flood forecast", "pruning"}


def test_a_rare_term_counts_more_than_a_common_one() -> None:
    rare = paper("Wildfire Spread Prediction", position=2)
    common = paper("Learning Better Representations", position=1)
    items = ranked([common, rare], profile({"wildfire": 1.0, "learning": 1.0}), keep_all=True)
    assert items[0].paper == rare


def test_trending_breaks_ties_between_equally_relevant_papers() -> None:
    quiet = paper("Sparse Attention One", position=1, upvotes=0)
    loud = paper("Sparse Attention Two", position=2, upvotes=90)
    other = paper("Something Else Entirely", position=3)
    items = ranked([quiet, loud, other], profile({"sparse attention": 1.0}))
    assert items[0].paper == loud
    assert items[0].why[-1].kind == "trending" and items[0].why[-1].detail == "90 upvotes, #2 on the page"


def test_nothing_relevant_and_keep_all_still_explains() -> None:
    items = ranked([paper("Completely Unrelated Topic")], profile({"quantum chromodynamics": 1.0}), keep_all=True)
    assert items[0].why[0].kind == "none"
    assert ranked([paper("Completely Unrelated Topic")], profile({"quantum chromodynamics": 1.0})) == []


def test_papers_already_in_a_digest_are_never_chosen_again() -> None:
    day = list(seed_days()[2].papers)
    person = next(p for p in bench_profiles() if p.name == "compression")
    first = ranked(day, person)
    again = ranked(day, person, seen={i.paper.id for i in first})
    assert first and again
    assert {i.paper.id for i in first}.isdisjoint(i.paper.id for i in again)
    everything = ranked(day, person, seen={i.paper.id for i in first}, keep_all=True)
    assert {i.paper.id for i in first}.isdisjoint(i.paper.id for i in everything)


def test_seed_papers_pull_in_similar_ones_and_are_not_sent_back() -> None:
    day = list(seed_days()[1].papers)
    pangu = "Pangu-Weather: A 3D High-Resolution Model for Fast and Accurate Global Weather Forecast"
    person = Profile(name="s", seeds=(pangu,))
    items = ranked(day, person)
    titles = [i.paper.title for i in items]
    assert pangu not in titles
    assert sum("eather" in t for t in titles[:5]) >= 3, titles[:5]
    assert items[0].why[0].kind == "seed" and items[0].why[0].label == pangu


def test_an_unknown_seed_is_ignored() -> None:
    person = Profile(name="s", keywords=(("pruning", 1.0),), seeds=("A Paper Nobody Ingested",))
    assert ranked(list(seed_days()[2].papers), person)


def test_rank_all_is_rank_for_each_profile() -> None:
    people = bench_profiles()
    day = list(seed_days()[0].papers)
    together = rank.rank_all(day, people, corpus=corpus(), normalise_title=ingest.normalise_title)
    assert together == [ranked(day, p) for p in people]


def test_rank_all_with_votes_for_some_profiles_is_rank_for_each() -> None:
    """Votes held only for the profiles that have them still reach the right profile, and only it."""
    people = bench_profiles()
    day, earlier = list(seed_days()[0].papers), list(seed_days()[1].papers)
    votes = {p.name: [(earlier[n].id, 1.0), (earlier[n + 1].id, -0.5)] for n, p in enumerate(people) if n % 3 == 1}
    together = rank.rank_all(day, people, corpus=corpus(), normalise_title=ingest.normalise_title, votes=votes)
    assert together == [ranked(day, p, votes=votes.get(p.name, [])) for p in people]
    assert together != rank.rank_all(day, people, corpus=corpus(), normalise_title=ingest.normalise_title)


def test_empty_inputs() -> None:
    assert rank.rank_all([], bench_profiles(), corpus=corpus(), normalise_title=ingest.normalise_title) == [[]] * len(
        bench_profiles()
    )
    assert rank.rank_all(list(seed_days()[0].papers), [], corpus=corpus(), normalise_title=ingest.normalise_title) == []
    assert rank.Corpus([]).size == 0


def test_trending_list_skips_chosen_and_excluded() -> None:
    day = [paper("Alpha Survey", position=1), paper("Beta Method", position=2), paper("Gamma Method", position=3)]
    hot = rank.trending(day, count=2, skip={day[1].id}, exclude=["SURVEY"])
    assert [p.title for p in hot] == ["Gamma Method"]


@cache
def vocabulary() -> list[str]:
    return sorted({w for p in archive() for w in p.title.lower().split() if len(w) > 3})


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_an_excluded_term_never_appears_in_a_returned_title_or_abstract(data: st.DataObject) -> None:
    words = st.sampled_from(vocabulary())
    terms = data.draw(st.lists(words | words.map(lambda w: w[: max(3, len(w) // 2)]), min_size=1, max_size=3))
    keywords = data.draw(st.lists(words, min_size=1, max_size=5, unique=True))
    day = data.draw(st.sampled_from(seed_days()))
    person = Profile(name="x", keywords=tuple((k, 1.0) for k in keywords), exclude=tuple(terms), min_score=0.0)
    for item in ranked(list(day.papers), person, keep_all=data.draw(st.booleans())):
        text = f"{item.paper.title} {item.paper.abstract or ''}".casefold()
        assert not any(t.casefold() in text for t in terms), (terms, item.paper.title)


@pytest.mark.parametrize(
    ("word", "stemmed"),
    [
        ("models", "model"),
        ("forecasting", "forecast"),
        ("pruned", "prune"),
        ("policies", "policy"),
        ("analysis", "analysis"),
        ("lora", "lora"),
    ],
)
def test_stem(word: str, stemmed: str) -> None:
    assert stem(word) == stemmed


@pytest.mark.slow
def test_the_reasons_add_up_to_the_score() -> None:
    people = [*bench_profiles(), Profile(name="s", keywords=(("weather", 1.0),), seeds=(archive()[250].title,))]
    for person in people:
        for day in seed_days():
            for item in ranked(list(day.papers), person, keep_all=True)[:15]:
                assert sum(r.score for r in item.why) == pytest.approx(item.score, abs=2e-3), item.paper.title


def test_one_common_word_of_a_phrase_is_not_enough() -> None:
    one_word = paper("A Benchmark for Image Similarity")
    items = ranked([one_word], profile({"text-to-image": 1.0, "image generation": 1.0, "diffusion model": 1.0}))
    assert items == []


def test_a_long_keyword_phrase_is_still_matched_whole() -> None:
    long = paper("Learning to Rank with Large Language Models at Scale")
    items = ranked([long], profile({"learning to rank with large language models": 1.0}))
    assert items[0].why[0].detail is None  # the whole phrase, not only its words
    assert items[0].why[0].where == ("title",)


def test_common_words_earn_no_partial_credit_on_their_own() -> None:
    """The issue's two examples: "context" + "learn", and "augment", no longer score."""
    day = list(seed_days()[3].papers)  # 003's day
    cases = [
        ("in-context learning", "Learning to Aggregate Multi-Scale Context for Instance Segmentation"),
        ("retrieval augmented generation", "Classification of BCI-EEG based on augmented covariance matrix"),
    ]
    for term, title in cases:
        [item] = [i for i in ranked(day, profile({term: 1.0}), keep_all=True) if i.paper.title.startswith(title)]
        assert not any(r.kind == "keyword" for r in item.why), (term, item)


def test_a_word_that_stands_for_its_phrase_still_earns_partial_credit() -> None:
    papers = [paper("Latent Diffusion for Audio", position=1), paper("Unrelated Work", position=2)]
    items = ranked(papers, profile({"diffusion model": 1.0}))
    assert [i.paper.title for i in items] == ["Latent Diffusion for Audio"]
    assert items[0].why[0].detail == "only diffusion"


def test_a_liked_paper_lifts_papers_like_it_and_says_so() -> None:
    earlier, day = list(seed_days()[0].papers), list(seed_days()[3].papers)
    liked = next(p for p in earlier if p.title.startswith("A Remote Sensing Image Change Detection"))
    nothing = profile({"quantum chromodynamics": 1.0})
    assert ranked(day, nothing) == []
    [top, *_] = ranked(day, nothing, votes=[(liked.id, 1.0)])
    assert "Remote Sensing" in top.paper.title
    assert render.describe(top.why[0]) == f"like “{liked.title}”, which you liked"


def test_a_disliked_paper_is_never_sent_and_pushes_its_likes_down() -> None:
    day = list(seed_days()[3].papers)
    person = profile({"remote sensing": 1.0, "segmentation": 1.0})
    before = ranked(day, person, keep_all=True)
    disliked = before[0].paper
    after = ranked(day, person, keep_all=True, votes=[(disliked.id, -1.0)])
    assert disliked.id not in {item.paper.id for item in after}
    pushed = [item for item in after if item.why[-1].kind == "less"]
    assert pushed and render.describe(pushed[0].why[-1]) == f"less like “{disliked.title}”"
    score = {item.paper.id: item.score for item in before}
    assert all(item.score < score[item.paper.id] for item in pushed)


def test_recent_votes_weigh_more(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from digest import pipeline
    from digest.config import Settings
    from digest.store import Store

    now = datetime(2026, 11, 26, tzinfo=UTC)
    with Store.open(tmp_path / "d.sqlite3") as store:
        store.subscribers.save("ada", text="", profile_hash="h", source=None, at=now)
        store.feedback.vote("ada", "new", 1, edition=None, at=now)
        store.feedback.vote("ada", "old", -1, edition=None, at=now - timedelta(days=60))
        [(first, fresh), (second, aged)] = sorted(
            pipeline.vote_weights(store, ["ada"], settings=Settings(), now=now)["ada"]
        )
    assert (first, second) == ("new", "old") and fresh == 1.0 and aged == -0.5


def test_the_archive_lends_a_profile_the_words_its_papers_share() -> None:
    """Pseudo-relevance feedback: a paper that never says "remote sensing" but is like the archive's best
    "remote sensing" papers gets credit, and the reason names the best of them."""
    fresh = rank.Corpus(archive())
    person = profile({"remote sensing": 1.0})
    day = list(seed_days()[1].papers)
    items = rank.rank(day, person, corpus=fresh, normalise_title=ingest.normalise_title, keep_all=True)
    near = [i for i in items if any(r.detail == "archive" for r in i.why)]
    assert near, "no paper got archive credit"
    quiet = [i for i in near if not any(r.kind == "keyword" for r in i.why) and i.score > 0]
    assert quiet, "no paper without the keyword got credit from the archive"
    said = render.describe(next(r for r in quiet[0].why if r.detail == "archive"))
    assert said.startswith("like the archive's best matches for your keywords, such as “")
    [(weights, found)] = fresh.implicit.items()
    [(keywords, rows)] = found.items()
    assert keywords == person.keywords and 0 < len(rows) <= 10
    rank.rank(day, person, corpus=fresh, normalise_title=ingest.normalise_title)
    assert fresh.implicit[weights][keywords] is rows  # worked out once per archive and keywords


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.floats(min_value=-1e4, max_value=1e4, allow_nan=False), max_size=50),
    st.lists(st.integers(min_value=-20000, max_value=20000), max_size=50),
)
def test_scores_are_rounded_as_python_rounds_them(values: list[float], halves: list[int]) -> None:
    """The vectorised rounding gives the very floats round(v, 4) gives, also at halves (0.00125, -0.00005…)."""
    from digest.rank.explain import rounded

    near = [(k + 0.5) / 1e4 for k in halves] + [float(np.float32((k + 0.5) / 1e4)) for k in halves]
    assert [repr(v) for v in rounded(np.asarray(values + near))] == [repr(round(v, 4)) for v in values + near]


@settings(max_examples=200, deadline=None)
@given(
    texts=st.lists(st.lists(st.sampled_from([*"abcd"]), max_size=12), max_size=6),
    phrases=st.lists(
        st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), min_size=1, max_size=6), min_size=1, max_size=6
    ),
)
def test_phrase_hits_count_every_occurrence_in_its_own_text(texts: list[list[str]], phrases: list[list[str]]) -> None:
    """The positional index counts what reading each text would: overlapping repeats, any length, never
    across two texts, nothing for a word no text has."""
    vocabulary = {" ".join(words): column for column, words in enumerate(dict.fromkeys(map(tuple, phrases)))}
    hits = Postings(texts).hits(vocabulary).toarray()
    for phrase, column in vocabulary.items():
        words = phrase.split()
        for row, text in enumerate(texts):
            expected = sum(text[i : i + len(words)] == words for i in range(len(text) - len(words) + 1))
            assert hits[row, column] == expected, (phrase, text)
