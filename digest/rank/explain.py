"""Why: the contributions behind each chosen score (keyword, seed, trending), largest first."""

from __future__ import annotations

import operator
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from digest.models import Paper, Reason, ReasonKind
from digest.rank.corpus import PARTIAL_FROM, Weights
from digest.rank.plan import Features, Likeness, Plan, starts


def explain(  # noqa: PLR0917 - one call site, every argument a different array
    rows: NDArray[np.int64],
    columns: NDArray[np.int64],
    papers: Sequence[Paper],
    plan: Plan,
    features: Features,
    like: dict[str, Likeness],
    relevance: NDArray[np.float32],
    prior: NDArray[np.float32],
    weights: Weights,
) -> list[tuple[Reason, ...]]:
    """The contributions behind each chosen (paper row, profile column) score, largest first.

    Every (pair, term) and (pair, term, word) value is computed at once with
    numpy; Python only assembles the reasons that contributed.
    """
    if not len(rows):
        return []
    reasons, matched = _keyword_reasons(rows, columns, plan, features, weights)
    for kind, found in like.items():
        _add_likeness(reasons, matched, (rows, columns, relevance.shape[1]), kind, found=found, weights=weights)
    trend = relevance[rows, columns].astype(np.float64) * weights.trending_weight * prior[rows]
    trending = np.flatnonzero(trend > 0)
    details: dict[int, str | None] = {}
    for n, r, value in zip(trending.tolist(), rows[trending].tolist(), rounded(trend[trending]), strict=True):
        if r not in details:
            details[r] = _trend_detail(papers[r])
        reasons[n].append(Reason(ReasonKind.TRENDING, "trending", value, (), details[r]))
    explained = []
    for found_reasons, any_match in zip(reasons, matched, strict=True):
        if len(found_reasons) > 1:
            found_reasons.sort(key=_SCORE, reverse=True)  # stable: equal scores keep their order
        if not any_match:
            found_reasons.insert(0, _NOTHING)
        explained.append(tuple(found_reasons))
    return explained


def rounded(values: NDArray[np.floating]) -> list[float]:
    """``[round(v, 4) for v in values]``, the same floats, vectorised: only values next to a half are left to
    Python (numpy's rounding can fall the other way there)."""
    values = np.asarray(values, dtype=np.float64)
    scaled = values * 1e4
    found: list[float] = (np.rint(scaled) / 1e4).tolist()
    for i in np.flatnonzero(np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6).tolist():
        found[i] = round(float(values[i]), 4)
    return found


_LIKENESS = {  # kind of likeness -> the reason's kind and detail
    "seed": (ReasonKind.SEED, None),
    "liked": (ReasonKind.SEED, "liked"),
    "archive": (ReasonKind.SEED, "archive"),
    "disliked": (ReasonKind.LESS, None),
}
_LEAST = 1e-9  # a likeness contributing less than this gives no reason


def _add_likeness(
    reasons: list[list[Reason]],
    matched: list[bool],
    pairs: tuple[NDArray[np.int64], NDArray[np.int64], int],
    kind: str,
    *,
    found: Likeness,
    weights: Weights,
) -> None:
    """Each pair's reason from a likeness (its closest paper and contribution), where it contributed; a seed-like
    reason counts as a match."""
    if not len(found.owners):
        return
    rows, columns, profiles = pairs
    score, best = found.at(rows, columns, profiles)
    value = score.astype(np.float64) * weights.strength(kind)
    given = np.flatnonzero((best >= 0) & (np.abs(value) >= _LEAST))
    reason_kind, detail = _LIKENESS[kind]
    for n, v, b in zip(given.tolist(), rounded(value[given]), best[given].tolist(), strict=True):
        reasons[n].append(Reason(reason_kind, found.title(found.rows[b]), v, (), detail))
        if reason_kind == ReasonKind.SEED:
            matched[n] = True


def _keyword_reasons(
    rows: NDArray[np.int64], columns: NDArray[np.int64], plan: Plan, features: Features, weights: Weights
) -> tuple[list[list[Reason]], list[bool]]:
    """Each pair's keyword reasons (whole terms, and phrases matched in part), and whether any matched."""
    table = plan.table
    title, abstract = _Lookup(features.title), _Lookup(features.abstract)
    boost, partial = weights.title_boost, weights.partial_credit
    # One entry per (pair, term of the pair's profile).
    counts = table.count[columns]
    pair = np.repeat(np.arange(len(rows)), counts)
    term = _expand(table.start[columns], counts)
    row = rows[pair]
    in_title = title[row, table.phrase[term]].astype(np.float64)
    in_abstract = abstract[row, table.phrase[term]].astype(np.float64)
    phrase_value = boost * in_title + in_abstract
    # One entry per (pair, term, word) of multi-word terms: the partial credit.
    word_counts = table.word_count[term]
    entry = np.repeat(np.arange(len(term)), word_counts)
    word = _expand(table.word_start[term], word_counts)
    word_title = title[row[entry], table.word[word]].astype(np.float64)
    word_abstract = abstract[row[entry], table.word[word]].astype(np.float64)
    found = (word_title > 0) | (word_abstract > 0)
    value = np.where(found, table.fraction[word] * (boost * word_title + word_abstract), 0.0)
    share = np.where(found, table.fraction[word], 0.0)
    alone = found & table.alone[word]
    enough = (np.bincount(entry, found, len(term)) >= PARTIAL_FROM) | (np.bincount(entry, alone, len(term)) > 0)
    coverage = np.bincount(entry, value, len(term)) * np.bincount(entry, share, len(term)) * enough
    weight = table.weight[term]
    score = (weight * phrase_value + partial * weight * coverage) / plan.norms[columns[pair]].astype(np.float64)
    keep = np.flatnonzero(score > 0)
    # Where a partly matched phrase's words were found: any of its words in the title / abstract.
    words_in_title = np.bincount(entry, word_title > 0, len(term)) > 0
    words_in_abstract = np.bincount(entry, word_abstract > 0, len(term)) > 0
    whole = phrase_value[keep] > 0
    places = zip(
        np.where(whole, in_title[keep] > 0, words_in_title[keep]).tolist(),
        np.where(whole, in_abstract[keep] > 0, words_in_abstract[keep]).tolist(),
        strict=True,
    )
    first_word = starts(word_counts)[keep].tolist()
    found_words, word_index = found.tolist(), word.tolist()
    reasons: list[list[Reason]] = [[] for _ in range(len(rows))]
    for owner, t, value, is_whole, place, first, size in zip(
        pair[keep].tolist(),
        term[keep].tolist(),
        rounded(score[keep]),
        whole.tolist(),
        places,
        first_word,
        word_counts[keep].tolist(),
        strict=True,
    ):
        detail = None
        if not is_whole:
            labels = [table.word_label[word_index[w]] for w in range(first, first + size) if found_words[w]]
            detail = "only " + ", ".join(labels)
        reasons[owner].append(Reason(ReasonKind.KEYWORD, table.label[t], value, _WHERE[place], detail))
    matched = (np.bincount(pair[keep], minlength=len(rows)) > 0).tolist()
    return reasons, matched


class _Lookup:
    """Values of a sparse matrix at (row, column) pairs, without making it dense."""

    def __init__(self, matrix: sp.csr_matrix) -> None:
        self._matrix = matrix.tocsr()
        self._matrix.sort_indices()

    def __getitem__(self, at: tuple[NDArray[np.int64], NDArray[np.int64]]) -> NDArray[np.float32]:
        rows, columns = at
        if not len(rows):
            return np.zeros(0, dtype=np.float32)
        return np.asarray(self._matrix[rows, columns], dtype=np.float32).ravel()


def _expand(first: NDArray[np.int64], counts: NDArray[np.int64]) -> NDArray[np.int64]:
    """Every index of the runs first[i], first[i] + 1, … (counts[i] of them), one run after another."""
    return np.repeat(first - starts(counts), counts) + np.arange(int(counts.sum()))


_SCORE = operator.attrgetter("score")
_NOTHING = Reason(ReasonKind.NONE, "no keyword or seed matched", 0.0)


_WHERE = {
    (True, True): ("title", "abstract"),
    (True, False): ("title",),
    (False, True): ("abstract",),
    (False, False): (),
}


def _trend_detail(paper: Paper) -> str | None:
    bits = [f"#{paper.position} on the page"] if paper.position else []
    if paper.upvotes:
        bits.insert(0, f"{paper.upvotes} upvote{'s' if paper.upvotes != 1 else ''}")
    return ", ".join(bits) or None
