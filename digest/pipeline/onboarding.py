"""Onboarding: the archive papers a reader is offered to rate (``rank.offers``), and their answers recorded as
votes, from the page after a sign-up, the preferences page, or ``digest onboard``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from digest import rank
from digest.config import Settings
from digest.models import Profile
from digest.pipeline.ranking import rank_for, reading
from digest.store import Feedback, Store

ONBOARDING_DAYS = 60  # offered papers were first seen within this many days ...
ONBOARDING_PAPERS = 1000  # ... and are among the latest this many: what one page view ranks (~0.3 s, and the
# archive's likeness to each, ~4 bytes x archive x papers, is held while it does)
MAX_ANSWERS = 2 * rank.ONBOARDING_SIZE  # answers taken from one form: a hostile post cannot vote on the archive


def onboarding_offers(store: Store, profile: Profile, *, settings: Settings, now: datetime) -> list[rank.Offer]:
    """About ten recent archive papers whose answers teach this profile's ranking most, best first: none the
    reader voted on or was sent already."""
    days = min(ONBOARDING_DAYS, settings.retention.history_days)
    recent = store.papers.since(now - timedelta(days=days))
    read = reading(store, profile, recent, settings=settings, now=now)
    voted = {paper for paper, _ in read.votes}
    papers = [p for p in recent if p.id not in voted][-ONBOARDING_PAPERS:]
    if not papers:
        return []
    ranked = rank_for(store, profile, papers, settings=settings, now=now, keep_all=True, read=read)
    return rank.offers(ranked, read.space, line=profile.min_score)


def record_answers(feedback: Feedback, name: str, answers: Mapping[str, int], *, at: datetime) -> int:
    """Each answer (paper id -> +1 yes, -1 no) as the reader's vote on it; how many changed anything."""
    changed = 0
    for paper, vote in list(answers.items())[:MAX_ANSWERS]:
        changed += feedback.vote(name, paper, vote, edition=None, at=at)
    return changed
