"""Scoring: a day's papers against every profile of a batch at once, best first (``rank_all``, ``rank``)."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from digest.models import Paper, Profile, Ranked
from digest.rank.corpus import PARTIAL_FROM, Corpus, Weights, content_tokens, document
from digest.rank.explain import explain
from digest.rank.plan import Features, Likeness, Plan, make_plan
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
    implicit: list[list[int]],
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
        for index in implicit[column]:
            rows["archive"].add(index, column, 1.0)
    shape = (len(papers), len(profiles))
    found = {
        kind: Likeness(np.zeros(shape, dtype=np.float32), [corpus.title(i) for i in group.index])
        for kind, group in rows.items()
    }
    if any(group.index for group in rows.values()):
        day = corpus.vectors(papers)
        for kind, group in rows.items():
            if group.index and kind == "disliked":
                _closest(day, corpus.rows(group.index), group, found[kind])
            elif group.index:
                matrix, contrast = corpus.rows(group.index), weights.seed_contrast
                _rocchio(
                    day, matrix, group, centroid=corpus.centroid, contrast=contrast, found=found[kind],
                    closest=kind != "archive",  # a profile's 10 archive matches for every paper cost a lot
                )  # fmt: skip
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

    def groups(self) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
        """Where each profile's rows start and stop, and its column."""
        owners = np.asarray(self.owner)
        starts = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]])
        return starts, np.r_[starts[1:], len(owners)], owners[starts]


def _rocchio(
    day: sp.csr_matrix,
    rows: sp.csr_matrix,
    good: _Rows,
    *,
    centroid: NDArray[np.float32],
    contrast: float,
    found: Likeness,
    closest: bool = True,
) -> None:
    """cos(d, q) for q = the weighted mean of a profile's rows - contrast * centroid, from products that stay sparse.

    With P = sum_j a_j s_j (a: the rows' weights over their profile's total),
    d.q = sum_j a_j d.s_j - contrast d.c and |q|^2 = |P|^2 - 2 contrast P.c + contrast^2 |c|^2.
    """
    starts, stops, columns = good.groups()
    weight = np.asarray(good.weight, dtype=np.float64)
    share = weight / np.repeat(np.add.reduceat(weight, starts), stops - starts)
    group = np.repeat(np.arange(len(starts)), stops - starts)
    mean = sp.csr_matrix((share, (group, np.arange(len(share)))), shape=(len(starts), rows.shape[0])) @ rows
    dot = (day @ mean.T).toarray() - contrast * (day @ centroid)[:, None]
    norms = np.asarray(mean.multiply(mean).sum(axis=1)).ravel() - 2 * contrast * (mean @ centroid)
    norms += contrast**2 * float(centroid @ centroid)
    found.score[:, columns] = np.clip(dot / np.sqrt(np.maximum(norms, 1e-12)), 0.0, None)
    found.best = np.full(found.score.shape, -1, dtype=np.int64)
    if not closest:  # the reason names the profile's first row (for archive matches: the best keyword match)
        found.best[:, columns] = starts
        return
    cosine = (day @ rows.T).toarray()  # papers x rows: the closest of each profile's rows, for the reasons
    for column, start, stop in zip(columns, starts, stops, strict=True):
        found.best[:, column] = start + np.argmax(cosine[:, start:stop], axis=1)


IMPLICIT_DEPTH = 10  # a profile's best keyword matches in the archive that act as implicit seeds
IMPLICIT_FLOOR = 0.2  # ... each scoring at least this on keywords alone


def implicit_seeds(profiles: Sequence[Profile], corpus: Corpus, weights: Weights) -> list[list[int]]:
    """Each profile's best keyword matches across the whole archive, as archive rows (pseudo-relevance feedback).

    An archive paper matches a term when it has all the term's content words
    (anywhere: the archive is not indexed by phrase); a match counts the term's
    weight times its idf, over the profile's total. Worked out once per archive,
    set of keywords and weights (``Corpus.implicit``).
    """
    missing = [c for c, p in enumerate(profiles) if (p.keywords, weights) not in corpus.implicit]
    if missing and corpus.size:
        scores = _archive_matches(corpus, [profiles[c] for c in missing])
        depth = min(IMPLICIT_DEPTH, scores.shape[0])
        top = np.argpartition(-scores, depth - 1, axis=0)[:depth]  # each column's best, unordered
        values = np.take_along_axis(scores, top, axis=0)
        order = np.lexsort((top, -values), axis=0)  # best first, ties by archive row
        top, values = np.take_along_axis(top, order, axis=0), np.take_along_axis(values, order, axis=0)
        for j, c in enumerate(missing):
            chosen = [int(i) for i, v in zip(top[:, j], values[:, j], strict=True) if v >= IMPLICIT_FLOOR]
            corpus.implicit[profiles[c].keywords, weights] = chosen
    return [corpus.implicit.get((p.keywords, weights), []) for p in profiles]


def _archive_matches(corpus: Corpus, profiles: Sequence[Profile]) -> NDArray[np.float32]:
    """archive x profiles: the share of each profile's keyword weight whose words an archive paper has."""
    words: list[int] = []  # per (term, word)
    word_term: list[int] = []
    need: list[int] = []  # per term: how many words it has
    term_weight: list[float] = []
    term_profile: list[int] = []
    for column, profile in enumerate(profiles):
        for label, weight in profile.keywords:
            wanted = content_tokens(label)
            found = [i for w in wanted if (i := corpus.word_index(w)) is not None]
            if not found or len(found) < len(wanted):
                continue  # a word the archive never had: no paper has the whole term
            words += found
            word_term += [len(need)] * len(found)
            need.append(len(found))
            term_weight.append(weight * corpus.keyword(label).idf)
            term_profile.append(column)
    presence = corpus.presence
    shape = (presence.shape[1], max(len(need), 1))
    terms = sp.csr_matrix((np.ones(len(words), dtype=np.float32), (words, word_term)), shape=shape)
    has = (presence @ terms).toarray() >= np.asarray(need or [1], dtype=np.float32)[None, :]
    strength = np.asarray(term_weight or [0.0], dtype=np.float32)
    owner = sp.csr_matrix((strength, (np.arange(len(strength)), term_profile or [0])), shape=(shape[1], len(profiles)))
    totals = np.asarray(owner.sum(axis=0)).ravel()
    matched = sp.csr_matrix(has.astype(np.float32)) @ owner
    return np.asarray(matched.toarray() / np.maximum(totals, 1e-9), dtype=np.float32)


def _closest(day: sp.csr_matrix, rows: sp.csr_matrix, bad: _Rows, found: Likeness) -> None:
    """Each paper's likeness to the most similar of the profile's rows, times that row's weight."""
    likeness = (day @ rows.T).toarray() * np.asarray(bad.weight)[None, :]  # papers x rows
    starts, stops, columns = bad.groups()
    found.best = np.full(found.score.shape, -1, dtype=np.int64)
    for start, stop, column in zip(starts, stops, columns, strict=True):
        closest = np.argmax(likeness[:, start:stop], axis=1)
        found.score[:, column] = np.clip(likeness[np.arange(len(closest)), start + closest], 0.0, None)
        found.best[:, column] = start + closest


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
    if not papers or not profiles:
        return [[] for _ in profiles]
    plan = make_plan(profiles, corpus, weights)
    features = day_features(papers, plan, weights)
    keyword = keyword_scores(features, plan)
    implicit = implicit_seeds(profiles, corpus, weights) if weights.archive_weight else [[] for _ in profiles]
    like = likenesses(
        papers, profiles, corpus, normalise_title, weights=weights, votes=votes, implicit=implicit
    )  # fmt: skip
    prior = trend_prior(papers)
    relevance = keyword + sum(weights.strength(kind) * found.score for kind, found in like.items())
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
