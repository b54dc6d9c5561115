"""Scoring: a day's papers against every profile of a batch at once, best first (``rank_all``, ``rank``)."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from digest.models import Paper, Profile, Ranked
from digest.rank.corpus import PARTIAL_FROM, Corpus, Weights, document
from digest.rank.explain import explain, rounded
from digest.rank.implicit import NO_ROWS, implicit_seeds
from digest.rank.plan import Features, Likeness, Plan, contrasted, make_plan
from digest.rank.postings import day_postings
from digest.rank.trending import trend_prior


def day_features(papers: Sequence[Paper], plan: Plan, weights: Weights) -> Features:
    """Title hits (0/1), saturated abstract hits and their weighted sum, papers x vocabulary."""
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


Votes = Mapping[str, Sequence[tuple[str, float]]]  # profile name -> (paper id, + liked / - disliked, by age)


def likenesses(
    papers: Sequence[Paper],
    profiles: Sequence[Profile],
    corpus: Corpus,
    normalise: Callable[[str], str],
    *,
    weights: Weights,
    votes: Votes | None,
    implicit: list[NDArray[np.int32]],
) -> dict[str, Likeness]:
    """Each paper's likeness to each profile's seeds, liked papers and best archive matches (Rocchio), and to
    its disliked papers (the closest one): ``seed``, ``liked``, ``archive`` and ``disliked``.

    Seed titles are looked up by the normalised form the store uses, passed in
    to keep this module pure; voted papers by id, weighted by their age.
    """
    rows = {kind: _Rows() for kind in ("seed", "liked", "archive", "disliked")}
    for column, profile in enumerate(profiles):
        for seed in profile.seeds:
            rows["seed"].add(corpus.seed_row(normalise(seed)), column, 1.0)
        for paper_id, weight in (votes or {}).get(profile.name, ()):
            rows["liked" if weight > 0 else "disliked"].add(corpus.paper_row(paper_id), column, abs(weight))
        rows["archive"].extend(implicit[column].tolist(), column)
    found = {}
    for kind, group in rows.items():
        if not group.index:
            score, best = np.zeros((len(papers), 0), dtype=np.float32), np.zeros((len(papers), 0), dtype=np.int32)
        elif kind == "disliked":
            score, best = _closest(corpus.similarity(papers), group)
        else:
            day, similarity = corpus.vectors(papers), corpus.similarity(papers)
            contrast = weights.seed_contrast
            score = _rocchio(day, similarity, corpus.matrix, group, centroid=corpus.centroid, contrast=contrast)
            best = _closest_row(similarity, group, first=kind == "archive")
        found[kind] = Likeness(group.groups()[0], score, best, group.index, corpus.title)
    return found


@dataclass
class _Rows:
    """Archive rows of seeds (or voted papers, or archive matches), grouped by the profile column that owns them."""

    index: list[int] = field(default_factory=list)  # archive rows
    owner: list[int] = field(default_factory=list)
    weight: list[float] = field(default_factory=list)

    def add(self, row: int | None, column: int, weight: float) -> None:
        if row is None:
            return
        self.index.append(row)
        self.owner.append(column)
        self.weight.append(weight)

    def extend(self, index: list[int], column: int) -> None:
        """Rows of equal weight."""
        self.index += index
        self.owner += [column] * len(index)
        self.weight += [1.0] * len(index)

    def groups(self) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
        """Each profile column that has rows, and where its rows start and stop."""
        owners = np.asarray(self.owner, dtype=np.int64)
        starts = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]]) if len(owners) else owners
        return owners[starts], starts, np.r_[starts[1:], len(owners)].astype(np.int64)


def _rocchio(
    day: sp.csr_matrix,
    similarity: NDArray[np.float32],
    archive: sp.csr_matrix,
    good: _Rows,
    *,
    centroid: NDArray[np.float32],
    contrast: float,
) -> NDArray[np.float32]:
    """papers x profiles: cos(d, q) for q = the weighted mean of a profile's rows - contrast * centroid, from the
    archive's cosines with the papers (``similarity``) and products that stay sparse.

    With P = sum_j a_j s_j (a: the rows' weights over their profile's total),
    d.q = sum_j a_j d.s_j - contrast d.c and |q|^2 = |P|^2 - 2 contrast P.c + contrast^2 |c|^2.
    """
    _, starts, stops = good.groups()
    weight = np.asarray(good.weight, dtype=np.float64)
    share = (weight / np.repeat(np.add.reduceat(weight, starts), stops - starts)).astype(np.float32)
    group = np.repeat(np.arange(len(starts)), stops - starts)
    mix = sp.csr_matrix((share, (group, good.index)), shape=(len(starts), similarity.shape[0]))
    mean = mix @ archive  # the P of every profile
    dot = (mix @ similarity).T - contrast * (day @ centroid)[:, None]  # sum_j a_j d.s_j, from d.s for every s
    norms = np.asarray(mean.multiply(mean).sum(axis=1)).ravel() - 2 * contrast * (mean @ centroid)
    norms += contrast**2 * float(centroid @ centroid)
    return np.asarray(np.clip(dot / np.sqrt(np.maximum(norms, 1e-12)), 0.0, None), dtype=np.float32)


def _closest_row(similarity: NDArray[np.float32], good: _Rows, *, first: bool) -> NDArray[np.int32]:
    """papers x profiles: the profile's row most like each paper, for the reasons; with ``first``, its first row
    (for archive matches, the best keyword match: the closest of ten rows for every paper costs a lot)."""
    _, starts, stops = good.groups()
    if first:
        return np.broadcast_to(starts.astype(np.int32)[None, :], (similarity.shape[1], len(starts)))
    best = np.empty((similarity.shape[1], len(starts)), dtype=np.int32)
    cosine = similarity[good.index].T  # papers x rows
    for slot, (start, stop) in enumerate(zip(starts, stops, strict=True)):
        best[:, slot] = start + np.argmax(cosine[:, start:stop], axis=1)
    return best


def _closest(similarity: NDArray[np.float32], bad: _Rows) -> tuple[NDArray[np.float32], NDArray[np.int32]]:
    """papers x profiles: each paper's likeness to the most similar of the profile's rows, times that row's weight,
    and which row that is."""
    _, starts, stops = bad.groups()
    likeness = similarity[bad.index].T * np.asarray(bad.weight, dtype=np.float32)[None, :]  # papers x rows
    score = np.empty((similarity.shape[1], len(starts)), dtype=np.float32)
    best = np.empty(score.shape, dtype=np.int32)
    for slot, (start, stop) in enumerate(zip(starts, stops, strict=True)):
        closest = np.argmax(likeness[:, start:stop], axis=1)
        score[:, slot] = np.clip(likeness[np.arange(len(closest)), start + closest], 0.0, None)
        best[:, slot] = start + closest
    return score, best


def rank_all(
    papers: Sequence[Paper],
    profiles: Sequence[Profile],
    *,
    corpus: Corpus,
    normalise_title: Callable[[str], str],
    weights: Weights = Weights(),
    seen: Mapping[str, set[str]] | None = None,
    votes: Votes | None = None,
    keep_all: bool = False,
) -> list[list[Ranked]]:
    """Rank ``papers`` for every profile; one list per profile, best first.

    Without ``keep_all`` a list holds the papers scoring at least the profile's
    ``min_score``, at most ``max_items`` of them; with it, every paper that is
    not excluded or already sent (``seen``: profile name -> paper ids). A
    profile's ``votes`` (paper id -> signed weight) add liked papers to its
    seeds, push papers like its disliked ones down, and a disliked paper is
    never ranked.
    """
    chosen, _ = rank_and_ask(
        papers, profiles, corpus=corpus, normalise_title=normalise_title, weights=weights, seen=seen, votes=votes,
        keep_all=keep_all,
    )  # fmt: skip
    return chosen


def rank_and_ask(
    papers: Sequence[Paper],
    profiles: Sequence[Profile],
    *,
    corpus: Corpus,
    normalise_title: Callable[[str], str],
    weights: Weights = Weights(),
    seen: Mapping[str, set[str]] | None = None,
    votes: Votes | None = None,
    keep_all: bool = False,
    ask: Sequence[bool] = (),
) -> tuple[list[list[Ranked]], list[Ranked | None]]:
    """``rank_all``, and for each profile whose ``ask`` is true, the day's question: the paper not chosen whose
    score is nearest the inclusion line (no reasons; None when every paper was chosen or none may be)."""
    if not papers or not profiles:
        return [[] for _ in profiles], [None for _ in profiles]
    plan = make_plan(profiles, corpus, weights)
    features = day_features(papers, plan, weights)
    keyword = keyword_scores(features, plan)
    implicit = implicit_seeds(profiles, plan, corpus, weights) if weights.archive_weight else [NO_ROWS] * len(profiles)
    like = likenesses(
        papers, profiles, corpus, normalise_title, weights=weights, votes=votes, implicit=implicit
    )  # fmt: skip
    like = contrasted(like, profiles=len(profiles))
    prior = trend_prior(papers)
    liking = np.zeros_like(keyword)
    for kind, found in like.items():
        liking[:, found.owners] += weights.strength(kind) * found.score
    relevance = keyword + liking
    scores = relevance * (1.0 + weights.trending_weight * prior[:, None])
    blocked = _blocked(papers, profiles, normalise_title, seen, votes)
    scores = np.where(blocked, -np.inf, scores).astype(np.float32)

    # Best first; ties by position on the page, then id, so the order is stable.
    tiebreak = np.lexsort(([p.id for p in papers], [p.position or 0 for p in papers])).argsort()
    by_rows = np.ascontiguousarray(scores.T)  # profiles x papers
    orders = _orders(by_rows, profiles, tiebreak, keep_all=keep_all)
    rows = np.asarray([i for order in orders for i in order], dtype=np.int64)
    columns = np.repeat(np.arange(len(profiles)), [len(order) for order in orders])
    why = iter(explain(rows, columns, papers, plan, features, like, relevance, prior, weights))
    score = iter(rounded(by_rows[columns, rows]))
    chosen = [
        [Ranked(papers[i], place, next(score), next(why)) for place, i in enumerate(order, start=1)] for order in orders
    ]
    asked = _questions(by_rows, orders, ask, tiebreak)
    questions = [
        None if row is None else Ranked(papers[row], len(order) + 1, rounded(by_rows[column, [row]])[0], ())
        for column, (row, order) in enumerate(zip(asked, orders, strict=True))
    ]
    return chosen, questions


def _questions(
    by_rows: NDArray[np.float32], orders: list[list[int]], ask: Sequence[bool], tiebreak: NDArray[np.int64]
) -> list[int | None]:
    """Per profile asking, the row of the paper scoring nearest the inclusion line among those not chosen.

    The line lies between the last paper chosen and the papers left out (the
    ``max_items``-th score when that many were chosen, else ``min_score``), and
    every paper left out scores below it: the nearest is the best of them, ties
    by ``tiebreak``. Blocked papers (excluded, sent before, disliked) never.
    """
    found: list[int | None] = [None] * len(orders)
    for column, asking in enumerate(ask):
        if not asking:
            continue
        left = by_rows[column].copy()
        left[orders[column]] = -np.inf
        best = float(left.max())
        if np.isfinite(best):
            tied = np.flatnonzero(left == best)
            found[column] = int(tied[np.argmin(tiebreak[tied])])
    return found


def _blocked(
    papers: Sequence[Paper],
    profiles: Sequence[Profile],
    normalise_title: Callable[[str], str],
    seen: Mapping[str, set[str]] | None,
    votes: Votes | None = None,
) -> NDArray[np.bool_]:
    """papers x profiles: True where the paper may not be recommended (excluded, a seed, sent before, disliked)."""
    blocked = excluded(papers, profiles)
    # A seed is a paper the subscriber already knows: never recommend it back.
    by_title = {p.norm_title: i for i, p in enumerate(papers)}
    for column, profile in enumerate(profiles):
        for seed in profile.seeds:
            if (row := by_title.get(normalise_title(seed))) is not None:
                blocked[row, column] = True
    position = {p.id: i for i, p in enumerate(papers)}
    for column, profile in enumerate(profiles):
        disliked = (paper_id for paper_id, weight in (votes or {}).get(profile.name, ()) if weight < 0)
        for paper_id in (*(seen or {}).get(profile.name, ()), *disliked):
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
    votes: Sequence[tuple[str, float]] = (),
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
        votes={profile.name: votes} if votes else None,
        keep_all=keep_all,
    )
    return ranked
