"""A new reader's first week: the onboarding papers, the daily question, and both as readers meet them."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser

import numpy as np
import pytest

from digest import ingest, links, pipeline, profiles, rank, render
from digest.errors import ProfileError
from digest.models import Digest, Profile, Ranked, Status, Subscriber
from digest.rank.onboarding import NEAR_DUPLICATE
from digest.render.context import QUESTION

from .test_rank import archive, bench_profiles, corpus, seed_days

LINKS = links.Links("https://digest.example.org", "s3cret-for-hmac", "ada", "ab" * 12)


def _ssl() -> Profile:
    return next(p for p in bench_profiles() if p.name == "ssl")


def _archive_ranked(person: Profile) -> list[Ranked]:
    return rank.rank(list(archive()), person, corpus=corpus(), normalise_title=ingest.normalise_title, keep_all=True)


# Onboarding: which papers are offered


@pytest.mark.parametrize("name", ["ssl", "weather", "3d"])
def test_onboarding_offers_ten_distinct_papers_best_matches_unsure_and_apart(name: str) -> None:
    person = next(p for p in bench_profiles() if p.name == name)
    ranked = _archive_ranked(person)
    offers = rank.offers(ranked, corpus(), line=person.min_score)
    ids = [o.item.paper.id for o in offers]
    assert len(offers) == rank.ONBOARDING_SIZE == len(set(ids))
    assert offers[0].item == ranked[0] and offers[0].kind == "best"  # the best match is confirmed
    assert {o.kind for o in offers} == {"best", "unsure", "apart"}
    nearest = min(ranked, key=lambda r: abs(r.score - person.min_score))
    assert nearest.paper.id in ids  # the paper the ranking is least sure of is asked
    assert [o.item.score for o in offers] == sorted((o.item.score for o in offers), reverse=True)
    vectors = corpus().vectors([o.item.paper for o in offers])
    cosine = (vectors @ vectors.T).toarray()
    np.fill_diagonal(cosine, 0.0)
    assert cosine.max() <= NEAR_DUPLICATE + 1e-6  # no two near-duplicates


def test_onboarding_of_a_tiny_or_empty_archive_offers_what_there_is() -> None:
    ranked = _archive_ranked(_ssl())
    assert [o.item for o in rank.offers(ranked[:3], corpus(), line=0.1)] == ranked[:3]
    assert rank.offers([], corpus(), line=0.1) == []


# The daily question: which paper is asked


def _day_ranking(person: Profile, **options: object) -> tuple[list[Ranked], Ranked | None, list[Ranked]]:
    day = list(seed_days()[0].papers)
    common = {"corpus": corpus(), "normalise_title": ingest.normalise_title}
    [items], [question] = rank.rank_and_ask(day, [person], ask=[True], **common, **options)  # type: ignore[arg-type]
    [everything] = rank.rank_all(day, [person], keep_all=True, **common, **options)  # type: ignore[arg-type]
    return items, question, everything


def test_the_question_is_the_paper_nearest_the_inclusion_line_and_not_in_the_digest() -> None:
    person = dataclasses.replace(_ssl(), max_items=5)
    items, question, everything = _day_ranking(person)
    assert len(items) == 5 and question is not None
    assert question.paper.id not in {i.paper.id for i in items}
    assert question.paper == everything[5].paper  # the line is the 5th paper's score: the 6th is nearest
    assert question.rank == 6 and question.why == ()
    quiet = dataclasses.replace(_ssl(), min_score=5.0)  # nothing reaches the line: the best below it is asked
    items, question, everything = _day_ranking(quiet)
    assert items == [] and question is not None and question.paper == everything[0].paper


def test_the_question_is_never_a_disliked_or_excluded_paper_and_only_when_asked() -> None:
    person = dataclasses.replace(_ssl(), max_items=5)
    _, first, _ = _day_ranking(person)
    assert first is not None
    _, again, _ = _day_ranking(person, votes={"ssl": [(first.paper.id, -1.0)]})
    assert again is not None and again.paper.id != first.paper.id
    word = first.paper.title.split()[0]
    _, other, _ = _day_ranking(dataclasses.replace(person, exclude=(word,)))
    assert other is not None and word.lower() not in other.paper.title.lower()
    day = list(seed_days()[0].papers)
    common = {"corpus": corpus(), "normalise_title": ingest.normalise_title}
    _, asked = rank.rank_and_ask(day, [person, person], ask=[False, True], **common)  # type: ignore[arg-type]
    assert asked[0] is None and asked[1] is not None


def test_who_is_asked_the_profile_says_else_the_first_days_and_the_operator_can_stop_it() -> None:
    joined = datetime(2026, 11, 1, tzinfo=UTC)
    reader = Subscriber("ada", None, "", "", Status.ACTIVE, None, joined, created_at=joined)
    new, old = joined + timedelta(days=29), joined + timedelta(days=31)
    default, yes, no = Profile(name="ada"), Profile(name="ada", ask=True), Profile(name="ada", ask=False)
    assert pipeline.asks(reader, default, on=new, ask_days=30) and not pipeline.asks(
        reader, default, on=old, ask_days=30
    )
    assert pipeline.asks(reader, yes, on=old, ask_days=30) and not pipeline.asks(reader, no, on=new, ask_days=30)
    assert not pipeline.asks(reader, yes, on=new, ask_days=0)  # off for everyone
    signed_up = dataclasses.replace(reader, joined_at=joined + timedelta(days=10))
    assert pipeline.asks(signed_up, default, on=old, ask_days=30)  # counted from the sign-up, not the first sync


def test_the_ask_key_takes_true_or_false_and_says_so_otherwise() -> None:
    base = 'keywords = ["diffusion model"]\n'
    assert profiles.parse("ask = true\n" + base, source="ada.toml", default_name="ada").ask is True
    assert profiles.parse(base, source="ada.toml", default_name="ada").ask is None
    with pytest.raises(ProfileError) as caught:
        profiles.parse('ask = "yes"\n' + base, source="ada.toml", default_name="ada")
    assert (
        str(caught.value)
        == "ada.toml: key 'ask': expected true or false, not text (got 'yes'); write ask = true or false"
    )


# The question as readers see it, in every format


def _asking_digest() -> Digest:
    person = dataclasses.replace(_ssl(), max_items=4)
    items, question, _ = _day_ranking(person)
    return Digest(person, datetime(2026, 11, 23).date(), tuple(items), (), new_count=86, question=question)


def test_the_question_ends_every_format_with_its_two_vote_links_and_is_not_counted() -> None:
    digest = _asking_digest()
    assert digest.question is not None
    more, less = (LINKS.feedback(digest.question.paper.id, vote, "2026-11-23") for vote in (1, -1))
    renders = render.Renderer()
    message = renders.message(digest, links=LINKS)
    plain = dataclasses.replace(digest, question=None)
    assert message.subject == renders.message(plain, links=LINKS).subject  # "… (+2)": four papers, not five
    for text in (message.text, message.html, message.markdown):
        assert QUESTION in text and more in text and less in text
        assert text.index(QUESTION) > text.index(digest.items[-1].paper.title[:30].replace("&", "&amp;"))
    assert "4 papers for you" in message.html and "5 papers" not in message.html
    mail = BytesParser(policy=policy.default).parsebytes(render.eml(message, sender="d@example.org", to="a@x.org"))
    html = mail.get_body(preferencelist=("html",))
    assert html is not None and QUESTION in html.get_content()
    for kind in ("slack", "discord", "teams", "mattermost"):
        raw = json.dumps(renders.chat(digest, kind, links=LINKS))
        assert QUESTION in raw and more in raw and less in raw, kind
    [hook] = renders.chat(digest, "webhook", links=LINKS)
    assert hook["question"]["id"] == digest.question.paper.id and hook["question"]["more"] == more
    assert digest.question.paper.id not in {item["id"] for item in hook["items"]}


def test_without_vote_links_there_is_no_question_to_answer() -> None:
    message = render.Renderer().message(_asking_digest())
    assert QUESTION not in message.text + message.html + message.markdown


def test_a_no_near_the_reader_s_interest_pushes_down_what_is_like_it_not_their_best_matches() -> None:
    day = list(seed_days()[0].papers)
    common = {"corpus": corpus(), "normalise_title": ingest.normalise_title, "keep_all": True}
    before = rank.rank(day, _ssl(), **common)  # type: ignore[arg-type]
    turned_down = before[14]  # a paper near the line, on the reader's topic ("a no" to the daily question)
    after = {r.paper.id: r.score for r in rank.rank(day, _ssl(), votes=[(turned_down.paper.id, -1.0)], **common)}  # type: ignore[arg-type]
    assert turned_down.paper.id not in after  # never shown again
    drops = {r.paper.id: r.score - after[r.paper.id] for r in before if r.paper.id in after}
    assert all(drops[r.paper.id] <= 0.001 for r in before[:8])  # the clear matches keep their scores
    assert max(drops.values()) > 0.005  # what is most like the paper turned down goes down
    assert max(drops, key=drops.__getitem__) not in {r.paper.id for r in before[:8]}
