"""Implicit seeds: each profile's best keyword matches across the whole archive (pseudo-relevance
feedback), which the ranking then treats like papers the reader liked (``score.rank_all``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from digest.models import Profile
from digest.rank.corpus import Corpus, Weights
from digest.rank.plan import Plan

NO_ROWS = np.zeros(0, dtype=np.int32)  # a profile with no implicit seed
IMPLICIT_DEPTH = 10  # a profile's best keyword matches in the archive that act as implicit seeds
IMPLICIT_FLOOR = 0.2  # ... each scoring at least this on keywords alone


def implicit_seeds(
    profiles: Sequence[Profile], plan: Plan, corpus: Corpus, weights: Weights
) -> list[NDArray[np.int32]]:
    """Each profile's best keyword matches across the whole archive, as archive rows (pseudo-relevance feedback).

    An archive paper matches a term when it has all the term's content words
    (anywhere: the archive is not indexed by phrase); a match counts the term's
    weight times its idf, over the profile's total. The best ``IMPLICIT_DEPTH``
    scoring at least ``IMPLICIT_FLOOR``, best first, ties by archive row; worked
    out once per archive, set of keywords and weights (``Corpus.implicit``).
    """
    known = corpus.implicit.setdefault(weights, {})
    missing = [c for c, p in enumerate(profiles) if p.keywords not in known]
    if missing and corpus.size:
        scores = _archive_matches(corpus, plan, np.asarray(missing, dtype=np.int64))
        owner = np.repeat(np.arange(len(missing)), np.diff(scores.indptr))
        value = np.round(scores.data, 5)  # equal shares summed in another order are still equal
        order = np.lexsort((-value, owner))  # per profile: best first; stable, so ties by archive row
        keep = order[np.arange(len(order)) - scores.indptr[owner[order]] < IMPLICIT_DEPTH]
        bounds = np.cumsum(np.bincount(owner[keep], minlength=len(missing))).tolist()
        chosen = scores.indices[keep].astype(np.int32)  # kept per profile: an array is a fifth of a list's memory
        for c, start, stop in zip(missing, [0, *bounds], bounds, strict=False):
            known[profiles[c].keywords] = chosen[start:stop]
    return [known.get(p.keywords, NO_ROWS) for p in profiles]


def _archive_matches(corpus: Corpus, plan: Plan, columns: NDArray[np.int64]) -> sp.csr_matrix:
    """columns x archive: the share of each profile's keyword weight whose words an archive paper has, where it
    reaches ``IMPLICIT_FLOOR`` (profiles x terms of weight shares, times terms x archive of 0/1)."""
    table = plan.table
    slot = np.full(len(table.count), -1, dtype=np.int64)
    slot[columns] = np.arange(len(columns))
    owner = slot[np.repeat(np.arange(len(table.count)), table.count)]  # per term: its row here, or -1
    ours = np.flatnonzero(owner >= 0)
    term, has = _term_presence(corpus, [table.label[t] for t in ours.tolist()])
    ours, term = ours[term >= 0], term[term >= 0]  # a term with a word the archive never had: no paper has it
    totals = np.bincount(owner[ours], table.weight[ours], minlength=len(columns))
    share = (table.weight[ours] / np.maximum(totals[owner[ours]], 1e-9)).astype(np.float32)
    matched = sp.csr_matrix((share, (owner[ours], term)), shape=(len(columns), has.shape[0])) @ has
    matched.data[matched.data < IMPLICIT_FLOOR] = 0.0
    matched.eliminate_zeros()  # below the floor: never a seed, and the rest sorts faster
    matched.sort_indices()
    return matched


def _term_presence(corpus: Corpus, labels: list[str]) -> tuple[NDArray[np.int64], sp.csr_matrix]:
    """Per label, its row in a (distinct terms x archive) 0/1 matrix of which papers have the term, or -1 for a
    term with a word the archive never had."""
    distinct: dict[str, int] = {}
    found: list[NDArray[np.int64]] = []
    for label in dict.fromkeys(labels):
        if (rows := corpus.term_rows(label)) is not None:
            distinct[label] = len(found)
            found.append(rows)
    where = np.concatenate([*found, np.zeros(0, dtype=np.int64)])
    starts = np.r_[0, np.cumsum([len(rows) for rows in found], dtype=np.int64)]
    has = sp.csr_matrix((np.ones(len(where), dtype=np.float32), where, starts), shape=(len(found), corpus.size))
    return np.asarray([distinct.get(label, -1) for label in labels], dtype=np.int64), has
