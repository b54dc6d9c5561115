"""Onboarding and the daily question: which papers a reader's answers teach the ranking most (pure).

A new reader has keywords only. Their answers ("more / less like this") count
as votes, and a vote teaches most where the ranking is least sure or where it
has seen nothing yet. So onboarding offers a few archive papers of each kind:

* **best**: the profile's best matches, to confirm them (a "no" here moves a
  wrong sense of a keyword down at once);
* **unsure**: the papers scoring nearest the inclusion line (the profile's
  ``min_score``), where one answer moves the most papers across it;
* **apart**: among the ``APART_POOL`` times ``size`` papers nearest the line,
  those least like everything chosen so far (farthest first), so the answers
  cover different sides of the line, not one topic.

No two chosen papers are near-duplicates (TF-IDF cosine at most
``NEAR_DUPLICATE``): ten answers about one topic teach what one would.
The daily question is one paper of the day's not shown, scoring nearest the
digest's own inclusion line (``score.rank_and_ask``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple

import numpy as np
from numpy.typing import NDArray

from digest.models import Ranked
from digest.rank.corpus import Corpus

ONBOARDING_SIZE = 10  # papers offered
NEAR_DUPLICATE = 0.5  # cosine from which two papers count as one
POOL = 5  # the best and the nearest the line looked at: this many times ``size`` of each
APART_POOL = 2  # "apart" papers come from this many times ``size`` of the papers nearest the line
SHARES = {"best": 0.4, "unsure": 0.4, "apart": 0.2}  # of the papers offered, each kind's part

Kind = Literal["best", "unsure", "apart"]


class Offer(NamedTuple):
    """An archive paper offered to rate, with its score for the profile and why it was chosen."""

    item: Ranked
    kind: Kind


def offers(ranked: Sequence[Ranked], corpus: Corpus, *, line: float, size: int = ONBOARDING_SIZE) -> list[Offer]:
    """Up to ``size`` of ``ranked`` (the archive ranked for one profile, best first, every paper kept) to offer a
    new reader: some best matches, the most unsure, some apart (see the module doc), best first."""
    if not ranked or size <= 0:
        return []
    scores = np.asarray([item.score for item in ranked], dtype=np.float64)
    unsure = np.lexsort((np.arange(len(scores)), np.abs(scores - line)))[: POOL * size]
    pool = np.union1d(np.arange(min(POOL * size, len(ranked))), unsure)  # the only rows ever looked at, best first
    at = {int(row): slot for slot, row in enumerate(pool.tolist())}
    vectors = corpus.vectors([ranked[i].paper for i in pool.tolist()])
    picker = _Picker((vectors @ vectors.T).toarray())
    counts = _counts(size)
    picker.take(range(len(pool)), counts["best"], "best")
    picker.take([at[int(row)] for row in unsure], counts["unsure"], "unsure")
    picker.spread([at[int(row)] for row in unsure[: APART_POOL * size]], size - len(picker.chosen))
    picker.take(range(len(pool)), size - len(picker.chosen), "best")  # a small archive: fill with the best
    return [Offer(ranked[int(pool[slot])], kind) for slot, kind in sorted(picker.chosen.items())]


def _counts(size: int) -> dict[Kind, int]:
    best = round(size * SHARES["best"])
    unsure = round(size * SHARES["unsure"])
    return {"best": best, "unsure": unsure, "apart": max(size - best - unsure, 0)}


class _Picker:
    """The papers chosen so far (row -> kind), none a near-duplicate of another."""

    def __init__(self, cosine: NDArray[np.floating]) -> None:
        self._cosine = np.asarray(cosine, dtype=np.float32)
        self.chosen: dict[int, Kind] = {}
        self._nearest = np.zeros(self._cosine.shape[0], dtype=np.float32)  # each row's cosine to the closest chosen

    def _fits(self, row: int) -> bool:
        return row not in self.chosen and (not self.chosen or self._nearest[row] <= NEAR_DUPLICATE)

    def _add(self, row: int, kind: Kind) -> None:
        self.chosen[row] = kind
        self._nearest = np.maximum(self._nearest, self._cosine[row])

    def take(self, rows: Sequence[int] | range, count: int, kind: Kind) -> None:
        """The first ``count`` of ``rows`` that fit, in their order."""
        for row in rows:
            if count <= 0:
                return
            if self._fits(row):
                self._add(row, kind)
                count -= 1

    def spread(self, rows: Sequence[int], count: int) -> None:
        """``count`` of ``rows``, each the one least like everything chosen so far (ties: the better ranked)."""
        pool: NDArray[np.int64] = np.asarray(rows, dtype=np.int64)
        for _ in range(count):
            pool = pool[[self._fits(int(r)) for r in pool]] if len(pool) else pool
            if not len(pool):
                return
            self._add(int(pool[np.argmin(self._nearest[pool])]), "apart")
