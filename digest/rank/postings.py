"""Where every phrase occurs in a day's titles and abstracts: built once a day, read by every batch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from digest.models import Paper
from digest.text import tokens


class Postings:
    """Where every word occurs in a day's texts, by position: built once a day, read by every batch.

    The texts are one stream of word numbers with a gap after each text; each
    word's positions in it are kept sorted. A phrase of any length occurs where
    its first word stands and each next word follows it (an intersection of
    position arrays), never across a gap. Four bytes a word of text, where an
    index of every phrase up to four words held about 30 KB a paper. Every
    batch of profiles then builds its hit matrix from lookups of its own
    vocabulary, instead of re-reading every text.
    """

    def __init__(self, texts: Sequence[list[str]]) -> None:
        self.rows = len(texts)
        self.lengths = [len(words) for words in texts]
        numbers = {_GAP: 0}
        stream = np.fromiter(
            (numbers.setdefault(word, len(numbers)) for words in texts for word in (*words, _GAP)),
            dtype=np.int32,
            count=sum(self.lengths) + len(texts),
        )
        self._order = np.argsort(stream, kind="stable").astype(np.int32)  # positions, word by word
        self._bounds = np.searchsorted(stream[self._order], np.arange(len(numbers) + 1))  # each word's slice
        self._starts = np.cumsum([0, *self.lengths[:-1]], dtype=np.int64) + np.arange(len(texts))  # texts in it
        del numbers[_GAP]
        self._numbers = numbers
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
            rows, counts = np.unique(self._rows_of(self._occurrences(phrase.split())), return_counts=True)
            found = self._arrays[phrase] = (rows.astype(np.int64), counts.astype(np.float32))
        return found

    def _positions(self, word: str) -> NDArray[np.int32]:
        number = self._numbers.get(word)
        if number is None:
            return _EMPTY.astype(np.int32)
        return self._order[self._bounds[number] : self._bounds[number + 1]]

    def _occurrences(self, words: list[str]) -> NDArray[np.int64]:
        """Where the phrase starts in the stream: its first word's positions whose next words follow."""
        if not words:
            return _EMPTY
        starts = self._positions(words[0]).astype(np.int64)
        for offset, word in enumerate(words[1:], start=1):
            if not len(starts):
                break
            starts = starts[np.isin(starts + offset, self._positions(word), assume_unique=True)]
        return starts

    def _rows_of(self, positions: NDArray[np.int64]) -> NDArray[np.int64]:
        return np.searchsorted(self._starts, positions, side="right") - 1


_GAP = "\x00"  # stands after each text; no word is ever this (tokens are letters and digits)
_EMPTY = np.zeros(0, dtype=np.int64)


_postings_cache: dict[tuple[str, ...], tuple[Postings, Postings]] = {}


def day_postings(papers: Sequence[Paper]) -> tuple[Postings, Postings]:
    """Title and abstract postings for a day's papers, kept for the most recent day only."""
    key = tuple(p.id for p in papers)
    if key not in _postings_cache:
        _postings_cache.clear()
        _postings_cache[key] = (
            Postings([tokens(p.title) for p in papers]),
            Postings([tokens(p.abstract or "") for p in papers]),
        )
    return _postings_cache[key]
