"""Retention: what the database no longer needs to keep, dropped (``[retention]``).

* **Bodies**: a delivered digest's text, HTML, Markdown and MIME body after
  ``bodies_days``; its items and reasons stay, so history, feeds and votes
  work, and ``preview`` shows it again from its items.
* **History**: digests made over ``history_days`` ago go with their items and
  the deliveries that ended, and so do old sightings and fetch records. Which
  papers each reader received stays (``received``), so no paper is sent to
  them twice.
* **Votes**: after ``VOTE_HALF_LIVES`` half-lives (``[rank]
  vote_half_life_days``) a vote weighs under half a percent: it goes.
* **Sign-ups**: one never confirmed goes once its link expired (``signups.VALID``,
  as the sign-up pass does), a confirmed one after ``history_days`` (its reader is a
  subscriber by then).
* **Bounces**: each bounce or complaint recorded goes after ``history_days`` (the rates
  look back 30 days, soft bounces ``[bounces] soft_days``); a suspension stays until lifted.

The daemon prunes once a day; ``digest send`` and ``digest run --once`` at
their end; ``digest prune`` by hand. All of it is one transaction; then
the freed pages are given back to the file system a few at a time
(``auto_vacuum = INCREMENTAL``, which new databases have and an upgrade
sets once).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from digest.config import Settings
from digest.pipeline.signups import VALID
from digest.store import Store

VOTE_HALF_LIVES = 8  # 0.5 ** 8: a vote then weighs 0.4% of a new one


@dataclass(frozen=True, slots=True)
class Pruned:
    """What a prune dropped (or, dry, would drop)."""

    bodies: int  # digests whose bodies went
    bytes: int  # those bodies' size
    digests: int = 0  # digests forgotten, with their items and ended deliveries
    sightings: int = 0
    fetches: int = 0
    votes: int = 0
    signups: int = 0
    bounces: int = 0
    reclaimed: int = 0  # bytes given back to the file system
    dry_run: bool = False

    @property
    def anything(self) -> bool:
        return any((self.bodies, self.digests, self.sightings, self.fetches, self.votes, self.signups, self.bounces))


def prune(store: Store, settings: Settings, *, now: datetime, dry_run: bool = False) -> Pruned:
    """Apply ``[retention]`` as of ``now`` (``dry_run``: only count), in one transaction. On PostgreSQL, one
    process at a time (``Store.chores``): while another prunes, this one drops nothing."""
    with store.chores() as mine:
        return _prune(store, settings, now=now, dry_run=dry_run) if mine else Pruned(0, 0, dry_run=dry_run)


def _prune(store: Store, settings: Settings, *, now: datetime, dry_run: bool) -> Pruned:
    kept = settings.retention
    bodies_before = now - timedelta(days=kept.bodies_days)
    history_before = now - timedelta(days=kept.history_days)
    votes_before = now - timedelta(days=VOTE_HALF_LIVES * settings.rank.vote_half_life_days)
    with store.db.transaction():
        bodies, size = store.digests.drop_bodies(before=bodies_before, dry_run=dry_run)
        done = Pruned(
            bodies,
            size,
            digests=store.digests.forget(before=history_before, dry_run=dry_run),
            sightings=store.papers.forget_sightings(before=history_before, dry_run=dry_run),
            fetches=store.fetches.forget(before=history_before.date(), dry_run=dry_run),
            votes=store.feedback.forget(before=votes_before, dry_run=dry_run),
            signups=store.signups.purge(before=now - VALID, confirmed_before=history_before, dry_run=dry_run),
            bounces=store.bounces.forget(before=history_before, dry_run=dry_run),
            dry_run=dry_run,
        )
    if dry_run or not done.anything:
        return done
    return replace(done, reclaimed=store.db.reclaim())  # a thousand pages a step, each its own short write
