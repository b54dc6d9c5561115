"""Ranking: a day's papers against every profile at once, with the reasons why (pure).

Nothing here touches files, the network, the environment or the clock.

Scores, for paper *d* and profile *p* (all as sparse matrix products over the
day's papers and every profile together, never a loop per pair):

* **keywords**: each term or phrase *k* with weight *w* adds
  ``w · idf(k) · (title_boost · in_title + abstract_saturation)``; a phrase whose
  words appear only separately earns ``partial_credit`` of that, shared out over
  its words. ``idf`` comes from the archive (every paper ever ingested), so a
  term on every page counts less than a rare one. The sum is divided by what a
  paper matching every term in title and abstract would score, so it is about
  0..1. Words are folded (case, plurals: *models* matches *model*).
* **seeds**: Rocchio: the cosine between the paper's TF-IDF vector and the
  profile's seed centroid minus ``seed_contrast`` times the archive's centroid
  (what every paper shares counts against), clipped at 0, times
  ``seed_weight``. On our labelled set this ranks at least as well as
  arxiv-sanity's per-profile linear SVM (bench/ranking.py) and, unlike an SVM
  per profile, is a few matrix products for all profiles at once.
* **trending**: a small prior from upvotes and page position (0..1) scales the
  relevance by ``1 + trending_weight * prior``: among relevant papers the
  trending ones rise; an irrelevant paper does not become relevant by trending.

An ``exclude`` term found anywhere in the title or abstract (case-insensitive,
as a substring, so *survey* also removes *Surveys*) removes the paper, and so
does having been in one of the subscriber's earlier digests.
"""

from __future__ import annotations

import operator
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

from digest.models import Paper, Profile, Ranked, Reason

_TOKEN = re.compile(r"[^\W_]+")


@dataclass(frozen=True, slots=True)
class Weights:
    """The ranker's knobs (config ``[rank]``)."""

    title_boost: float = 2.0
    partial_credit: float = 0.7
    seed_weight: float = 1.0
    seed_contrast: float = 0.5
    trending_weight: float = 0.05
    k1: float = 1.2
    b: float = 0.75


_VOWELS = frozenset("aeiouy")


def _has_vowel(stem: str) -> bool:
    return any(ch in _VOWELS for ch in stem)


def _short_cvc(stem: str) -> bool:
    """Porter's *o: a short stem ending consonant-vowel-consonant, the last not w, x or y (hop, tun)."""
    if len(stem) < 3 or len(stem) > 4:
        return False
    a, b, c = stem[-3], stem[-2], stem[-1]
    return a not in _VOWELS and b in _VOWELS and c not in _VOWELS and c not in "wxy"


@lru_cache(maxsize=131072)
def fold(token: str) -> str:
    """A word's comparable form: Porter's steps 1a and 1b, so inflections meet.

    *models* and *model*, *forecasting* and *forecast*, *pruned*, *pruning* and
    *prune*, *policies* and *policy* fold alike. Words of three letters or less,
    and anything with a digit, stay as they are.
    """
    if len(token) <= 3 or not token.isalpha():
        return token
    # 1a: plurals
    if token.endswith("sses"):
        token = token[:-2]
    elif token.endswith("ies"):
        token = token[:-3] + "y"
    elif token.endswith("s") and not token.endswith(("ss", "us", "is")):
        token = token[:-1]
    # 1b: -ed and -ing, where what is left still has a vowel
    if token.endswith("eed"):
        return token[:-1] if len(token) > 4 else token
    for suffix in ("ing", "ed"):
        stem = token[: -len(suffix)]
        if token.endswith(suffix) and _has_vowel(stem) and len(stem) >= 2:
            if stem.endswith(("at", "bl", "iz")):
                return stem + "e"
            if len(stem) > 2 and stem[-1] == stem[-2] and stem[-1] not in "lsz":
                return stem[:-1]
            if _short_cvc(stem):
                return stem + "e"
            return stem
    return token


def tokens(text: str) -> list[str]:
    """Folded word tokens of a text: NFKC, casefolded, split on anything but letters and digits."""
    return [fold(t) for t in _TOKEN.findall(unicodedata.normalize("NFKC", text).casefold())]


def _content_tokens(text: str) -> list[str]:
    return [t for t in tokens(text) if t not in ENGLISH_STOP_WORDS and len(t) > 1]


def _document(paper: Paper) -> str:
    return f"{paper.title}\n{paper.abstract or ''}"


def _phrase(term: str) -> str:
    return " ".join(tokens(term))


class Corpus:
    """The archive's TF-IDF space, fitted once per archive and shared by every profile and call.

    Build one from every paper ever ingested; rebuild it only when the archive
    changes (``pipeline`` caches it by the archive's size and last paper).
    """

    def __init__(self, papers: Sequence[Paper]) -> None:
        self.size = len(papers)
        self._vectorizer = TfidfVectorizer(analyzer=_content_tokens, sublinear_tf=True, dtype=np.float32, min_df=1)
        documents = [_document(p) for p in papers] or [""]
        try:
            self._matrix = self._vectorizer.fit_transform(documents).tocsr()
        except ValueError:  # an archive with no words at all
            self._vectorizer = TfidfVectorizer(analyzer=lambda _: ["_"], dtype=np.float32)
            self._matrix = self._vectorizer.fit_transform(documents).tocsr()
        self._row = {p.norm_title: i for i, p in enumerate(papers)}
        self._ids = frozenset(p.id for p in papers)
        self._titles = [p.title for p in papers]
        vocabulary = self._vectorizer.vocabulary_
        idf = self._vectorizer.idf_
        self._idf = {term: float(idf[index]) for term, index in vocabulary.items()}
        self._max_idf = float(idf.max()) if len(idf) else 1.0
        self.centroid = np.asarray(self._matrix.mean(axis=0), dtype=np.float32).ravel()
        self._terms: dict[str, _Keyword] = {}

    def __contains__(self, paper_id: object) -> bool:
        return paper_id in self._ids

    def idf(self, phrase: str) -> float:
        """The phrase's rarity: the idf of its rarest word (unknown words count as rarest)."""
        words = [w for w in phrase.split() if w not in ENGLISH_STOP_WORDS] or phrase.split()
        return max((self._idf.get(w, self._max_idf) for w in words), default=self._max_idf)

    def keyword(self, label: str) -> _Keyword:
        """A profile term as the ranker reads it, worked out once per archive (profiles share most terms)."""
        found = self._terms.get(label)
        if found is None:
            phrase = _phrase(label)
            words = [w for w in dict.fromkeys(phrase.split()) if w not in ENGLISH_STOP_WORDS]
            if len(phrase.split()) < 2 or not words:
                words = []
            rarity = [self.idf(word) for word in words]
            found = _Keyword(phrase, self.idf(phrase) if phrase else 0.0, words, [r / sum(rarity) for r in rarity])
            self._terms[label] = found
        return found

    def vectors(self, papers: Sequence[Paper]) -> sp.csr_matrix:
        """L2-normalised TF-IDF rows for papers, in the archive's space."""
        return self._vectorizer.transform([_document(p) for p in papers]).tocsr()

    def seed(self, norm_title: str) -> tuple[sp.csr_matrix, str] | None:
        """The archive vector and title of a seed paper, by normalised title."""
        row = self._row.get(norm_title)
        if row is None:
            return None
        return self._matrix[row], self._titles[row]


@dataclass(frozen=True, slots=True)
class _Keyword:
    """A keyword's folded phrase, its idf, and a multi-word phrase's content words with their idf shares."""

    phrase: str
    idf: float
    words: list[str]
    fractions: list[float]


@dataclass
class _Plan:
    """All profiles' terms mapped onto one vocabulary, and the weight matrices over it."""

    vocabulary: dict[str, int]
    table: _TermTable
    weights: sp.csr_matrix  # vocabulary x profiles: whole-term weights
    fractions: sp.csr_matrix  # vocabulary x phrases: each word's idf share of a multi-word phrase
    partial: sp.csr_matrix  # phrases x profiles: partial_credit times the term's weight
    norms: NDArray[np.float32]  # per profile


def _plan(profiles: Sequence[Profile], corpus: Corpus, weights: Weights) -> _Plan:
    """Every profile's terms, in flat lists: a batch of 1,000 profiles has some 5,500 of them."""
    vocabulary: dict[str, int] = {}
    phrases: dict[str, int] = {}
    split: tuple[list[int], list[int], list[float]] = ([], [], [])
    count: list[int] = []
    phrase: list[int] = []
    weight: list[float] = []
    label: list[str] = []
    word_count: list[int] = []
    word: list[int] = []
    fraction: list[float] = []
    word_label: list[str] = []
    partial_phrase: list[int] = []  # per multi-word term: its phrase ...
    partial_term: list[int] = []  # ... and the term
    for profile in profiles:
        terms = 0
        for term_label, user_weight in profile.keywords:
            keyword = corpus.keyword(term_label)
            if not keyword.phrase:
                continue
            phrase.append(vocabulary.setdefault(keyword.phrase, len(vocabulary)))
            weight.append(user_weight * keyword.idf)
            label.append(term_label)
            word_count.append(len(keyword.words))
            if keyword.words:
                # Words found apart earn part of the phrase's credit, by their share of its rarity
                # ("diffusion" is most of "diffusion model"), and more when more of them are there.
                indices = [vocabulary.setdefault(w, len(vocabulary)) for w in keyword.words]
                word += indices
                fraction += keyword.fractions
                word_label += keyword.words
                if keyword.phrase not in phrases:
                    phrases[keyword.phrase] = len(phrases)
                    for index, share in zip(indices, keyword.fractions, strict=True):
                        _append(split, index, phrases[keyword.phrase], share)
                partial_phrase.append(phrases[keyword.phrase])
                partial_term.append(len(label) - 1)
            terms += 1
        count.append(terms)
    table = _TermTable(
        start=_starts(np.asarray(count, dtype=np.int64)),
        count=np.asarray(count, dtype=np.int64),
        phrase=np.asarray(phrase, dtype=np.int64),
        weight=np.asarray(weight, dtype=np.float64),
        label=label,
        word_start=_starts(np.asarray(word_count, dtype=np.int64)),
        word_count=np.asarray(word_count, dtype=np.int64),
        word=np.asarray(word, dtype=np.int64),
        fraction=np.asarray(fraction, dtype=np.float64),
        word_label=word_label,
    )
    column = np.repeat(np.arange(len(profiles)), table.count)  # per term: its profile
    totals = np.bincount(column, table.weight * (weights.title_boost + 1.0), minlength=len(profiles))
    norms = np.where(totals > 0, totals, 1.0).astype(np.float32)
    size, shared = max(len(vocabulary), 1), max(len(phrases), 1)
    terms_at = np.asarray(partial_term, dtype=np.int64)
    return _Plan(
        vocabulary=vocabulary,
        table=table,
        weights=_matrix(table.phrase, column, table.weight, (size, len(profiles))),
        fractions=_sparse(split, (size, shared)),
        partial=_matrix(
            np.asarray(partial_phrase, dtype=np.int64),
            column[terms_at],
            weights.partial_credit * table.weight[terms_at],
            (shared, len(profiles)),
        ),
        norms=norms,
    )


def _append(triplets: tuple[list[int], list[int], list[float]], row: int, column: int, value: float) -> None:
    triplets[0].append(row)
    triplets[1].append(column)
    triplets[2].append(value)


def _sparse(triplets: tuple[list[int], list[int], list[float]], shape: tuple[int, int]) -> sp.csr_matrix:
    rows, columns, values = triplets
    return _matrix(np.asarray(rows, dtype=np.int64), np.asarray(columns, dtype=np.int64), np.asarray(values), shape)


def _matrix(
    rows: NDArray[np.int64], columns: NDArray[np.int64], values: NDArray[np.float64], shape: tuple[int, int]
) -> sp.csr_matrix:
    return sp.csr_matrix((values.astype(np.float32), (rows, columns)), shape=shape, dtype=np.float32)


def _keyword_scores(features: _Features, plan: _Plan) -> NDArray[np.float32]:
    """papers x profiles: whole-term hits plus partial phrase hits, normalised per profile.

    A phrase's partial value is coverage (its words' hits, weighted by idf share)
    times the share of its words present at all, so one common word of a
    two-word phrase earns a quarter of what both words would, not half.
    """
    present = features.combined.copy()
    present.data[:] = 1.0
    coverage = (features.combined @ plan.fractions).multiply(present @ plan.fractions).tocsr()
    scores = features.combined @ plan.weights + coverage @ plan.partial
    return np.asarray(scores.toarray() / plan.norms, dtype=np.float32)


INDEXED_WORDS = 4  # phrases up to this long are indexed; a longer keyword phrase is found by scanning


class _Postings:
    """Where every phrase of up to MAX_PHRASE_WORDS words occurs in a day's texts: built once per day.

    Every batch of profiles then builds its hit matrix from lookups of its own
    vocabulary, instead of re-reading every text.
    """

    def __init__(self, texts: Sequence[list[str]]) -> None:
        self.rows = len(texts)
        self.lengths = [len(words) for words in texts]
        self._texts = texts
        # Most phrases occur once in one text: those hold just the row (a dict each was half the memory).
        found: dict[str, int | dict[int, int]] = {}
        for row, words in enumerate(texts):
            for n in range(1, INDEXED_WORDS + 1):
                for start in range(len(words) - n + 1):
                    gram = " ".join(words[start : start + n])
                    seen = found.get(gram)
                    if seen is None:
                        found[gram] = row
                    elif isinstance(seen, int):
                        found[gram] = {seen: 2} if seen == row else {seen: 1, row: 1}
                    else:
                        seen[row] = seen.get(row, 0) + 1
        self._found = found
        self._arrays: dict[str, tuple[NDArray[np.int64], NDArray[np.float32]]] = {}  # the phrases asked for

    def hits(self, vocabulary: Mapping[str, int]) -> sp.csr_matrix:
        """texts x vocabulary counts, from each phrase's occurrences as arrays (made once a day)."""
        found = [self._array(phrase) for phrase in vocabulary]
        rows = np.concatenate([r for r, _ in found]) if found else np.zeros(0, dtype=np.int64)
        data = np.concatenate([c for _, c in found]) if found else np.zeros(0, dtype=np.float32)
        columns = np.repeat(np.fromiter(vocabulary.values(), np.int64, len(vocabulary)), [len(r) for r, _ in found])
        return sp.csr_matrix((data, (rows, columns)), shape=(self.rows, max(len(vocabulary), 1)))

    def _array(self, phrase: str) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        found = self._arrays.get(phrase)
        if found is None:
            counts = self._occurrences(phrase)
            found = (
                np.fromiter(counts.keys(), np.int64, len(counts)),
                np.fromiter(counts.values(), np.float32, len(counts)),
            )
            self._arrays[phrase] = found
        return found

    def _occurrences(self, phrase: str) -> dict[int, int]:
        words = phrase.split()
        if len(words) <= INDEXED_WORDS or phrase in self._found:
            seen = self._found.get(phrase, {})
            return {seen: 1} if isinstance(seen, int) else seen
        counts: dict[int, int] = {}
        n = len(words)
        for row, text in enumerate(self._texts):
            hits = sum(1 for start in range(len(text) - n + 1) if text[start : start + n] == words)
            if hits:
                counts[row] = hits
        self._found[phrase] = counts  # scanned once a day, not once per batch
        return counts


_postings_cache: dict[tuple[str, ...], tuple[_Postings, _Postings]] = {}


def _day_postings(papers: Sequence[Paper]) -> tuple[_Postings, _Postings]:
    """Title and abstract postings for a day's papers, kept for the most recent day only."""
    key = tuple(p.id for p in papers)
    if key not in _postings_cache:
        _postings_cache.clear()
        _postings_cache[key] = (
            _Postings([tokens(p.title) for p in papers]),
            _Postings([tokens(p.abstract or "") for p in papers]),
        )
    return _postings_cache[key]


@dataclass
class _Features:
    title: sp.csr_matrix  # papers x vocabulary, 0/1
    abstract: sp.csr_matrix  # papers x vocabulary, saturated counts in 0..1
    combined: sp.csr_matrix  # title_boost * title + abstract


def _features(papers: Sequence[Paper], plan: _Plan, weights: Weights) -> _Features:
    titles, abstracts = _day_postings(papers)
    title = titles.hits(plan.vocabulary).tocsr()
    title.data[:] = 1.0
    counts = abstracts.hits(plan.vocabulary).tocoo()
    lengths = np.asarray(abstracts.lengths, dtype=np.float32)
    average = float(lengths.mean()) if len(lengths) and lengths.mean() > 0 else 1.0
    k = weights.k1 * (1 - weights.b + weights.b * lengths[counts.row] / average)
    saturated = counts.data * (weights.k1 + 1) / (counts.data + k) / (weights.k1 + 1)
    abstract = sp.csr_matrix((saturated.astype(np.float32), (counts.row, counts.col)), shape=counts.shape)
    return _Features(title=title, abstract=abstract, combined=(weights.title_boost * title + abstract).tocsr())


def _prior(papers: Sequence[Paper]) -> NDArray[np.float32]:
    """0..1 per paper: half from upvotes (log-scaled to the day's most), half from page position."""
    upvotes = np.asarray([p.upvotes or 0 for p in papers], dtype=np.float32)
    top = float(np.log1p(upvotes.max())) if len(upvotes) else 0.0
    votes = np.log1p(upvotes) / top if top > 0 else np.zeros_like(upvotes)
    positions = np.asarray([p.position or len(papers) for p in papers], dtype=np.float32)
    place = 1.0 - (positions - 1.0) / max(len(papers) - 1, 1)
    return (0.5 * votes + 0.5 * np.clip(place, 0.0, 1.0)).astype(np.float32)


def _excluded(papers: Sequence[Paper], profiles: Sequence[Profile]) -> NDArray[np.bool_]:
    """papers x profiles: True where an exclude term occurs in the title or abstract."""
    mask = np.zeros((len(papers), len(profiles)), dtype=bool)
    texts: list[str] = []  # folded once, and only when some profile excludes something
    found: dict[str, NDArray[np.bool_]] = {}
    for column, profile in enumerate(profiles):
        for term in profile.exclude:
            needle = " ".join(unicodedata.normalize("NFKC", term).casefold().split())
            if not texts:
                texts = [" ".join(unicodedata.normalize("NFKC", _document(p)).casefold().split()) for p in papers]
            if needle not in found:
                found[needle] = np.fromiter((needle in text for text in texts), dtype=bool, count=len(texts))
            mask[:, column] |= found[needle]
    return mask


@dataclass
class _Seeds:
    score: NDArray[np.float32]  # papers x profiles: Rocchio similarity, 0 where no seeds
    best: NDArray[np.int64]  # papers x profiles: the most similar seed (index into titles), -1 if none
    titles: list[str]


def _seeds(
    papers: Sequence[Paper],
    profiles: Sequence[Profile],
    corpus: Corpus,
    normalise: Callable[[str], str],
    *,
    contrast: float,
) -> _Seeds:
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
        return _Seeds(score, best, titles)
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
    return _Seeds(score, best, titles)


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
    plan = _plan(profiles, corpus, weights)
    features = _features(papers, plan, weights)
    keyword = _keyword_scores(features, plan)
    seeds = _seeds(papers, profiles, corpus, normalise_title, contrast=weights.seed_contrast)
    prior = _prior(papers)
    relevance = keyword + weights.seed_weight * seeds.score
    scores = relevance * (1.0 + weights.trending_weight * prior[:, None])
    blocked = _excluded(papers, profiles)
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
    scores = np.where(blocked, -np.inf, scores).astype(np.float32)

    # Best first; ties by position on the page, then id, so the order is stable.
    tiebreak = np.lexsort(([p.id for p in papers], [p.position or 0 for p in papers])).argsort()
    by_rows = np.ascontiguousarray(scores.T)  # profiles x papers
    orders: list[list[int]] = [[] for _ in profiles]
    if keep_all:
        for column in range(len(profiles)):
            orders[column] = _best_first(by_rows[column], np.flatnonzero(np.isfinite(by_rows[column])), tiebreak)
    else:
        limits: dict[tuple[float, int], list[int]] = {}
        for column, profile in enumerate(profiles):
            limits.setdefault((profile.min_score, profile.max_items), []).append(column)
        for (least, most), members in limits.items():
            for column, order in zip(members, _top(by_rows[members], least, most, tiebreak), strict=True):
                orders[column] = order
    rows = np.asarray([i for order in orders for i in order], dtype=np.int64)
    columns = np.repeat(np.arange(len(profiles)), [len(order) for order in orders])
    why = iter(_explain(rows, columns, papers, plan, features, seeds, relevance, prior, weights))
    return [
        [
            Ranked(paper=papers[i], rank=place, score=round(value, 4), why=next(why))
            for place, (i, value) in enumerate(zip(order, by_rows[column, order].tolist(), strict=True), start=1)
        ]
        for column, order in enumerate(orders)
    ]


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


def _explain(  # noqa: PLR0917 - one call site, every argument a different array
    rows: NDArray[np.int64],
    columns: NDArray[np.int64],
    papers: Sequence[Paper],
    plan: _Plan,
    features: _Features,
    seeds: _Seeds,
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
    coverage = np.bincount(entry, value, len(term)) * np.bincount(entry, share, len(term))
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
    first_word = _starts(word_counts)[keep].tolist()
    found_words, word_index = found.tolist(), word.tolist()
    reasons: list[list[Reason]] = [[] for _ in range(len(rows))]
    for owner, t, value, is_whole, place, first, size in zip(
        pair[keep].tolist(),
        term[keep].tolist(),
        score[keep].tolist(),
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
        reasons[owner].append(Reason("keyword", table.label[t], round(value, 4), _WHERE[place], detail))
    similar = seeds.score[rows, columns].astype(np.float64) * weights.seed_weight
    liked = ((similar > 0) & (seeds.best[rows, columns] >= 0)).tolist()
    similarity = similar.tolist()
    best = seeds.best[rows, columns].tolist()
    trend = (relevance[rows, columns].astype(np.float64) * weights.trending_weight * prior[rows]).tolist()
    matched = (np.bincount(pair[keep], minlength=len(rows)) > 0).tolist()
    details: dict[int, str | None] = {}
    explained = []
    for n, (r, found_reasons) in enumerate(zip(rows.tolist(), reasons, strict=True)):
        if liked[n]:
            found_reasons.append(Reason("seed", seeds.titles[best[n]], round(similarity[n], 4)))
        if trend[n] > 0:
            if r not in details:
                details[r] = _trend_detail(papers[r])
            found_reasons.append(Reason("trending", "trending", round(trend[n], 4), (), details[r]))
        if len(found_reasons) > 1:
            found_reasons.sort(key=_SCORE, reverse=True)  # stable: equal scores keep their order
        if not (matched[n] or liked[n]):
            found_reasons.insert(0, _NOTHING)
        explained.append(tuple(found_reasons))
    return explained


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


def _starts(counts: NDArray[np.int64]) -> NDArray[np.int64]:
    """Where each of consecutive runs of these lengths starts."""
    return np.cumsum(counts) - counts


def _expand(first: NDArray[np.int64], counts: NDArray[np.int64]) -> NDArray[np.int64]:
    """Every index of the runs first[i], first[i] + 1, … (counts[i] of them), one run after another."""
    return np.repeat(first - _starts(counts), counts) + np.arange(int(counts.sum()))


_SCORE = operator.attrgetter("score")
_NOTHING = Reason("none", "no keyword or seed matched", 0.0)


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


@dataclass
class _TermTable:
    """A plan's terms as flat arrays: each profile's terms contiguous, each term's words contiguous."""

    start: NDArray[np.int64]  # per profile: its first term
    count: NDArray[np.int64]  # per profile: how many terms
    phrase: NDArray[np.int64]  # per term: vocabulary index of the whole phrase
    weight: NDArray[np.float64]
    label: list[str]
    word_start: NDArray[np.int64]  # per term: its first word
    word_count: NDArray[np.int64]
    word: NDArray[np.int64]  # per word: vocabulary index
    fraction: NDArray[np.float64]
    word_label: list[str]


def trending_order(papers: Sequence[Paper]) -> list[Paper]:
    """The day's papers, most trending first (upvotes, then page position): computed once per day."""
    prior = _prior(papers)
    return [papers[i] for i in sorted(range(len(papers)), key=lambda i: (-prior[i], papers[i].position or 0))]


def trending(
    papers: Sequence[Paper],
    *,
    count: int,
    skip: Iterable[str] = (),
    exclude: Iterable[str] = (),
    order: Sequence[Paper] | None = None,
) -> list[Paper]:
    """The day's ``count`` most trending papers, minus ``skip`` ids and papers with an excluded term.

    Pass ``order`` (from ``trending_order``) when picking for many subscribers from one day.
    """
    if count <= 0:
        return []
    skip = set(skip)
    needles = [" ".join(t.casefold().split()) for t in exclude]
    chosen: list[Paper] = []
    for paper in order if order is not None else trending_order(papers):
        if paper.id in skip:
            continue
        if needles and any(n in " ".join(_document(paper).casefold().split()) for n in needles):
            continue
        chosen.append(paper)
        if len(chosen) == count:
            break
    return chosen
