"""Scoring: a day's papers against every profile of a batch at once, best first (``rank_all``, ``rank``)."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from digest.models import Paper, Profile, Ranked
from digest.rank.corpus import PARTIAL_FROM, Corpus, Weights, document
from digest.rank.explain import explain
from digest.rank.plan import Features, Plan, Seeds, make_plan
from digest.rank.postings import day_postings
from digest.rank.trending import trend_prior


def day_features(papers: Sequence[Paper], plan: Plan, weights: Weights) -> Features:
    titles, abstracts = day_postings(papers)
    title = titles.hits(plan.vocabulary).tocsr()
    title.data[:] = 1.0
    counts = abstracts.hits(plan.vocabulary).tocoo()
    lengths = np.asarray(abstracts.lengths, dtype=np.float32)
    average = float(lengths.mean()) if len(lengths) and lengths.mean() > 0 else 1.0
    k = weights.k1 * (1 - weights.b + weights.b * lengths[counts.row] / average)
    saturated = counts.data * (weights.k1 + 1) / (counts.data + k) / (weights.k1 + 1)
    abstract = sp.csr_matrix((saturated.astype(np.float32), (counts.row, counts.col)), shape=counts.shape)
    return Features(title=title, abstract=abstract, combined=(weights.title_boost * title + abstract).tocsr())


def keyword_scores(features: Features, plan: Plan) -> NDArray[np.float32]:
    """papers x profiles: whole-term hits plus partial phrase hits, normalised per profile.

    A phrase's partial value is coverage (its words' hits, weighted by idf share)
    times the share of its words present at all, so one word of a two-word
    phrase earns a quarter of what both words would, not half; and none unless
    ``PARTIAL_FROM`` of its distinctive words are there, or one that stands for it.
    """
    present = features.combined.copy()
    present.data[:] = 1.0
    enough = ((present @ plan.members) >= PARTIAL_FROM) + ((present @ plan.alone) >= 1)
    coverage = (features.combined @ plan.fractions).multiply(present @ plan.fractions).multiply(enough).tocsr()
    scores = features.combined @ plan.weights + coverage @ plan.partial
    return np.asarray(scores.toarray() / plan.norms, dtype=np.float32)


def excluded(papers: Sequence[Paper], profiles: Sequence[Profile]) -> NDArray[np.bool_]:
    """papers x profiles: True where an exclude term occurs in the title or abstract."""
    mask = np.zeros((len(papers), len(profiles)), dtype=bool)
    texts: list[str] = []  # folded once, and only when some profile excludes something
    found: dict[str, NDArray[np.bool_]] = {}
    for column, profile in enumerate(profiles):
        for term in profile.exclude:
            needle = " ".join(unicodedata.normalize("NFKC", term).casefold().split())
            if not texts:
                texts = [" ".join(unicodedata.normalize("NFKC", document(p)).casefold().split()) for p in papers]
            if needle not in found:
                found[needle] = np.fromiter((needle in text for text in texts), dtype=bool, count=len(texts))
            mask[:, column] |= found[needle]
    return mask


def seed_scores(
    papers: Sequence[Paper],
    profiles: Sequence[Profile],
    corpus: Corpus,
    normalise: Callable[[str], str],
    *,
    contrast: float,
) -> Seeds:
    """Seed titles are looked up by the normalised form the store uses, passed in to keep this module pure."""
    vectors: list[sp.csr_matrix] = []
    titles: list[str] = []
    owner: list[int] = []
    for column, profile in enumerate(profiles):
        for seed in profile.seeds:
            found = corpus.seed(normalise(seed))
            if found is not None:
                vectors.append(found[0])
                titles.append(found[1])
                owner.append(column)
    score = np.zeros((len(papers), len(profiles)), dtype=np.float32)
    best = np.full((len(papers), len(profiles)), -1, dtype=np.int64)
    if not vectors:
        return Seeds(score, best, titles)
    seeds = sp.vstack(vectors).tocsr()
    day = corpus.vectors(papers)
    cosine = (day @ seeds.T).toarray()  # papers x seeds
    owners = np.asarray(owner)
    starts = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]])
    stops = np.r_[starts[1:], len(owner)]
    columns = owners[starts]
    counts = (stops - starts).astype(np.float32)
    # cos(d, q) for q = mean(seeds) - contrast * centroid, from products that stay sparse:
    # d.q = mean_j d.s_j - contrast * d.c, and |q|^2 = |mean s|^2 - 2 contrast mean(s.c) + contrast^2 |c|^2.
    centroid = corpus.centroid
    day_c = day @ centroid
    seed_c = seeds @ centroid
    gram = (seeds @ seeds.T).toarray()
    dot = np.add.reduceat(cosine, starts, axis=1) / counts - contrast * day_c[:, None]
    norms = np.empty(len(starts), dtype=np.float32)
    for g, (start, stop) in enumerate(zip(starts, stops, strict=True)):
        n = stop - start
        mean_norm = gram[start:stop, start:stop].sum() / (n * n)
        norms[g] = mean_norm - 2 * contrast * seed_c[start:stop].mean() + contrast**2 * float(centroid @ centroid)
        best[:, columns[g]] = start + np.argmax(cosine[:, start:stop], axis=1)
    score[:, columns] = np.clip(dot / np.sqrt(np.maximum(norms, 1e-12)), 0.0, None)
    return Seeds(score, best, titles)


def rank_all(
    papers: Sequence[Paper],
    profiles: Sequence[Profile],
    *,
    corpus: Corpus,
    normalise_title: Callable[[str], str],
    weights: Weights = Weights(),
    seen: Mapping[str, set[str]] | None = None,
    keep_all: bool = False,
) -> list[list[Ranked]]:
    """Rank ``papers`` for every profile; one list per profile, best first.

    Without ``keep_all`` a list holds the papers scoring at least the profile's
    ``min_score``, at most ``max_items`` of them; with it, every paper that is
    not excluded or already sent (``seen``: profile name -> paper ids).
    """
    if not papers or not profiles:
        return [[] for _ in profiles]
    plan = make_plan(profiles, corpus, weights)
    features = day_features(papers, plan, weights)
    keyword = keyword_scores(features, plan)
    seeds = seed_scores(papers, profiles, corpus, normalise_title, contrast=weights.seed_contrast)
    prior = trend_prior(papers)
    relevance = keyword + weights.seed_weight * seeds.score
    scores = relevance * (1.0 + weights.trending_weight * prior[:, None])
    blocked = _blocked(papers, profiles, normalise_title, seen)
    scores = np.where(blocked, -np.inf, scores).astype(np.float32)

    # Best first; ties by position on the page, then id, so the order is stable.
    tiebreak = np.lexsort(([p.id for p in papers], [p.position or 0 for p in papers])).argsort()
    by_rows = np.ascontiguousarray(scores.T)  # profiles x papers
    orders = _orders(by_rows, profiles, tiebreak, keep_all=keep_all)
    rows = np.asarray([i for order in orders for i in order], dtype=np.int64)
    columns = np.repeat(np.arange(len(profiles)), [len(order) for order in orders])
    why = iter(explain(rows, columns, papers, plan, features, seeds, relevance, prior, weights))
    return [
        [
            Ranked(paper=papers[i], rank=place, score=round(value, 4), why=next(why))
            for place, (i, value) in enumerate(zip(order, by_rows[column, order].tolist(), strict=True), start=1)
        ]
        for column, order in enumerate(orders)
    ]


def _blocked(
    papers: Sequence[Paper],
    profiles: Sequence[Profile],
    normalise_title: Callable[[str], str],
    seen: Mapping[str, set[str]] | None,
) -> NDArray[np.bool_]:
    """papers x profiles: True where the paper may not be recommended (excluded, a seed, or sent before)."""
    blocked = excluded(papers, profiles)
    # A seed is a paper the subscriber already knows: never recommend it back.
    by_title = {p.norm_title: i for i, p in enumerate(papers)}
    for column, profile in enumerate(profiles):
        for seed in profile.seeds:
            if (row := by_title.get(normalise_title(seed))) is not None:
                blocked[row, column] = True
    if seen:
        position = {p.id: i for i, p in enumerate(papers)}
        for column, profile in enumerate(profiles):
            for paper_id in seen.get(profile.name, ()):
                if paper_id in position:
                    blocked[position[paper_id], column] = True
    return blocked


def _orders(
    by_rows: NDArray[np.float32], profiles: Sequence[Profile], tiebreak: NDArray[np.int64], *, keep_all: bool
) -> list[list[int]]:
    """Per profile, the rows of its papers best first: every one not blocked, or its top ``max_items``."""
    orders: list[list[int]] = [[] for _ in profiles]
    if keep_all:
        for column in range(len(profiles)):
            orders[column] = _best_first(by_rows[column], np.flatnonzero(np.isfinite(by_rows[column])), tiebreak)
        return orders
    limits: dict[tuple[float, int], list[int]] = {}
    for column, profile in enumerate(profiles):
        limits.setdefault((profile.min_score, profile.max_items), []).append(column)
    for (least, most), members in limits.items():
        for column, order in zip(members, _top(by_rows[members], least, most, tiebreak), strict=True):
            orders[column] = order
    return orders


def _best_first(scores: NDArray[np.float32], chosen: NDArray[np.int64], tiebreak: NDArray[np.int64]) -> list[int]:
    """``chosen`` papers ordered by score, best first, ties by ``tiebreak`` (page position, then id)."""
    return [int(i) for i in chosen[np.lexsort((tiebreak[chosen], -scores[chosen]))]]


def _top(scores: NDArray[np.float32], least: float, most: int, tiebreak: NDArray[np.int64]) -> list[list[int]]:
    """Per row (a profile): the ``most`` best papers scoring at least ``least``, best first.

    Vectorised over the rows: the ``most`` largest by a partition, then sorted. A
    row whose cut falls between equal scores is redone exactly, so which of the
    tied papers get in follows the tiebreak, not the partition.
    """
    papers = scores.shape[1]
    if most >= papers:
        return [_best_first(row, np.flatnonzero(row >= least), tiebreak) for row in scores]
    part = np.argpartition(-scores, most - 1, axis=1)[:, :most]
    values = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((tiebreak[part], -values), axis=1)
    part = np.take_along_axis(part, order, axis=1)
    values = np.take_along_axis(values, order, axis=1)
    cut = values[:, -1]
    tied = ((scores >= cut[:, None]).sum(axis=1) > most) & (cut >= least)
    counts = (values >= least).sum(axis=1).tolist()
    tops = [row[:count] for row, count in zip(part.tolist(), counts, strict=True)]
    for r in np.flatnonzero(tied).tolist():
        tops[r] = _best_first(scores[r], np.flatnonzero(scores[r] >= least), tiebreak)[:most]
    return tops


def rank(
    papers: Sequence[Paper],
    profile: Profile,
    *,
    corpus: Corpus,
    normalise_title: Callable[[str], str],
    weights: Weights = Weights(),
    seen: set[str] | None = None,
    keep_all: bool = False,
) -> list[Ranked]:
    """Rank ``papers`` for one profile (``rank_all`` with a single column)."""
    [ranked] = rank_all(
        papers,
        [profile],
        corpus=corpus,
        normalise_title=normalise_title,
        weights=weights,
        seen={profile.name: seen} if seen else None,
        keep_all=keep_all,
    )
    return ranked
