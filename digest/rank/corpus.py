"""The archive's TF-IDF space (``Corpus``), the ranker's knobs (``Weights``) and how a keyword is read.

Pure: no files, clock or environment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, cached_property

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from digest.models import Paper
from digest.text import tokens


@dataclass(frozen=True, slots=True)
class Weights:
    """The ranker's knobs (config ``[rank]``)."""

    title_boost: float = 2.0
    partial_credit: float = 0.7
    seed_weight: float = 1.0
    seed_contrast: float = 0.5
    trending_weight: float = 0.05
    archive_weight: float = 0.3  # likeness to the profile's best keyword matches in the whole archive
    liked_weight: float = 0.75  # a "more like this" paper beside the profile's own seeds (Rocchio's beta)
    disliked_weight: float = 0.5  # how hard likeness to a "less like this" paper pushes down
    k1: float = 1.2
    b: float = 0.75

    def strength(self, likeness: str) -> float:
        """How much likeness to a profile's seeds, liked, archive or disliked papers counts (disliked: against)."""
        return {
            "seed": self.seed_weight,
            "liked": self.liked_weight,
            "archive": self.archive_weight,
            "disliked": -self.disliked_weight,
        }[likeness]


@cache
def stop_words() -> frozenset[str]:
    """scikit-learn's English stop words, imported when first needed (scikit-learn takes a second to load)."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS  # noqa: PLC0415 - only where ranking happens

    return frozenset(ENGLISH_STOP_WORDS)


def content_tokens(text: str) -> list[str]:
    stop = stop_words()
    return [t for t in tokens(text) if t not in stop and len(t) > 1]


def document(paper: Paper) -> str:
    return f"{paper.title}\n{paper.abstract or ''}"


def phrase_of(term: str) -> str:
    return " ".join(tokens(term))


Keywords = tuple[tuple[str, float], ...]  # a profile's terms and weights

COMMON_SHARE = 0.2  # a word in more than this share of the archive is common: it never counts on its own
PARTIAL_FROM = 2  # distinctive words of a phrase found together earn partial credit
STANDS_FOR = 0.2  # ... and one alone does if at least this share of the archive's papers with it have the phrase
SIMILARITY_CELLS = 2_000_000  # (paper, archive paper) pairs made at once: about 24 MB while they are made


class Corpus:
    """The archive's TF-IDF space, fitted once per archive and shared by every profile and call.

    Build one from every paper ever ingested; rebuild it only when the archive
    changes (``pipeline`` caches it by the archive's size and last paper).
    """

    def __init__(self, papers: Sequence[Paper]) -> None:
        self.size = len(papers)
        from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: PLC0415 - see stop_words

        self._vectorizer = TfidfVectorizer(analyzer=content_tokens, sublinear_tf=True, dtype=np.float32, min_df=1)
        documents = [document(p) for p in papers] or [""]
        try:
            self._matrix = self._vectorizer.fit_transform(documents).tocsr()
        except ValueError:  # an archive with no words at all
            self._vectorizer = TfidfVectorizer(analyzer=lambda _: ["_"], dtype=np.float32)
            self._matrix = self._vectorizer.fit_transform(documents).tocsr()
        self._row = {p.norm_title: i for i, p in enumerate(papers)}
        self._row_of_id = {p.id: i for i, p in enumerate(papers)}
        self._ids = frozenset(p.id for p in papers)
        self._titles = [p.title for p in papers]
        vocabulary = self._vectorizer.vocabulary_
        idf = self._vectorizer.idf_
        self._idf = {term: float(idf[index]) for term, index in vocabulary.items()}
        self._max_idf = float(idf.max()) if len(idf) else 1.0
        counts = np.bincount(self._matrix.indices, minlength=len(idf)) if len(papers) else np.zeros(len(idf))
        self._count = {term: int(counts[index]) for term, index in vocabulary.items()}  # papers with the word
        self._last_vectors: tuple[tuple[str, ...], sp.csr_matrix] | None = None
        self._last_similarity: tuple[tuple[str, ...], NDArray[np.float32]] | None = None
        self._term_rows: dict[str, NDArray[np.int64] | None] = {}
        self.implicit: dict[
            Weights, dict[Keywords, NDArray[np.int32]]
        ] = {}  # per weights: keywords -> best archive rows
        self._folded: dict[int, str] = {}
        self._papers = papers
        self.centroid = np.asarray(self._matrix.mean(axis=0), dtype=np.float32).ravel()
        self._terms: dict[str, Keyword] = {}

    def __contains__(self, paper_id: object) -> bool:
        return paper_id in self._ids

    @property
    def papers(self) -> Sequence[Paper]:
        """The archive's papers, in the order of its rows."""
        return self._papers

    def idf(self, phrase: str) -> float:
        """The phrase's rarity: the idf of its rarest word (unknown words count as rarest)."""
        words = [w for w in phrase.split() if w not in stop_words()] or phrase.split()
        return max((self._idf.get(w, self._max_idf) for w in words), default=self._max_idf)

    def distinctive(self, word: str) -> bool:
        """Whether a word is rare enough to stand for a phrase: in at most ``COMMON_SHARE`` of the archive."""
        return self._count.get(word, 0) <= COMMON_SHARE * max(self.size, 1)

    def keyword(self, label: str) -> Keyword:
        """A profile term as the ranker reads it, worked out once per archive (profiles share most terms).

        A multi-word phrase earns partial credit only from its distinctive
        words: where two of them are found together, or one that stands for
        the phrase in the archive ("diffusion" for "diffusion model"). A common
        word ("learn", "model", "data") never counts, and a rare word that
        mostly means something else ("context" for "in-context learning",
        "augment" for "retrieval augmented generation") does not count alone.
        """
        found = self._terms.get(label)
        if found is None:
            phrase = phrase_of(label)
            content = [w for w in dict.fromkeys(phrase.split()) if w not in stop_words()]
            words = [w for w in content if self.distinctive(w)] if len(phrase.split()) > 1 else []
            alone = self._standing(phrase, words)
            if len(words) < PARTIAL_FROM and not any(alone):
                words, alone = [], []
            rarity = [self.idf(word) for word in words]
            fractions = [r / sum(rarity) for r in rarity]
            found = Keyword(phrase, self.idf(phrase) if phrase else 0.0, words, fractions, alone)
            self._terms[label] = found
        return found

    def _standing(self, phrase: str, words: list[str]) -> list[bool]:
        """For each word, whether at least ``STANDS_FOR`` of the archive's papers that have it have the phrase."""
        if not words:
            return []
        present = [self._rows_with(t) for t in dict.fromkeys(phrase.split()) if t in self._count]
        candidates = set.intersection(*sorted(present, key=len)) if present else set()
        needle = f" {phrase} "  # the phrase's words in a row, as a paper's folded text holds them
        whole = sum(needle in self._folded_text(row) for row in candidates)
        return [whole >= STANDS_FOR * self._count.get(w, 0) > 0 for w in words]

    def _rows_with(self, word: str) -> set[int]:
        """The archive rows whose text has this (content) word."""
        return set(self._column_rows(self._vectorizer.vocabulary_[word]).tolist())

    @cached_property
    def _columns(self) -> sp.csc_matrix:
        """Which papers have each word (made when a phrase's words are first weighed)."""
        return self._matrix.tocsc()

    def _folded_text(self, row: int) -> str:
        """A paper's folded words, one space apart and one either side (so a phrase is found by a substring
        search, in C, not word by word), kept for the papers a phrase was looked for in."""
        found = self._folded.get(row)
        if found is None:
            found = self._folded[row] = f" {' '.join(tokens(document(self._papers[row])))} "
        return found

    def vectors(self, papers: Sequence[Paper]) -> sp.csr_matrix:
        """L2-normalised TF-IDF rows for papers, in the archive's space (the last day's kept: batches share it)."""
        key = tuple(p.id for p in papers)
        if self._last_vectors is None or self._last_vectors[0] != key:
            self._last_vectors = (key, self._vectorizer.transform([document(p) for p in papers]).tocsr())
        return self._last_vectors[1]

    def similarity(self, papers: Sequence[Paper]) -> NDArray[np.float32]:
        """archive x papers: every archive paper's cosine with each paper (the last day's kept: batches share it).

        Dense, 4 bytes a pair: an archive of 20,000 against 1,000 papers holds 80 MB.
        An archive row's cosines lie together, so a batch takes its seeds' rows
        without copying the rest. Made ``SIMILARITY_CELLS`` pairs at a time, so
        making it needs little more than the matrix itself.
        """
        key = tuple(p.id for p in papers)
        if self._last_similarity is None or self._last_similarity[0] != key:
            self._last_similarity = None  # the old day's matrix goes before the new one is made
            day = self.vectors(papers).T.tocsr()
            found = np.empty((self.size, day.shape[1]), dtype=np.float32)
            step = max(1, SIMILARITY_CELLS // max(day.shape[1], 1))
            for start in range(0, self.size, step):  # a slice at a time: the sparse product is large
                found[start : start + step] = (self._matrix[start : start + step] @ day).toarray()
            self._last_similarity = (key, found)
        return self._last_similarity[1]

    def term_rows(self, label: str) -> NDArray[np.int64] | None:
        """The archive rows that have every content word of a term, anywhere (kept per term); None for a
        term with a word the archive never had (or none at all)."""
        if label not in self._term_rows:
            words = list(dict.fromkeys(content_tokens(label)))
            columns = [c for w in words if (c := self._vectorizer.vocabulary_.get(w)) is not None]
            found: NDArray[np.int64] | None = None
            if words and len(columns) == len(words):
                found = np.arange(self.size, dtype=np.int64)
                for column in columns:
                    found = np.intersect1d(found, self._column_rows(int(column)), assume_unique=True)
            self._term_rows[label] = found
        return self._term_rows[label]

    def _column_rows(self, column: int) -> NDArray[np.int64]:
        columns = self._columns
        return np.asarray(columns.indices[columns.indptr[column] : columns.indptr[column + 1]], dtype=np.int64)

    def seed_row(self, norm_title: str) -> int | None:
        """The archive row of a seed paper, by normalised title."""
        return self._row.get(norm_title)

    def paper_row(self, paper_id: str) -> int | None:
        """The archive row of a paper, by id (a voted paper)."""
        return self._row_of_id.get(paper_id)

    @property
    def matrix(self) -> sp.csr_matrix:
        """archive x vocabulary: the archive's L2-normalised TF-IDF rows (read only)."""
        return self._matrix

    def title(self, index: int) -> str:
        return self._titles[index]


@dataclass(frozen=True, slots=True)
class Keyword:
    """A keyword's folded phrase, its idf, and a multi-word phrase's distinctive words with their idf shares."""

    phrase: str
    idf: float
    words: list[str]
    fractions: list[float]
    alone: list[bool]  # per word: whether it earns partial credit on its own
