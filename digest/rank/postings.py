"""Where every short phrase occurs in a day's titles and abstracts: built once a day, read by every batch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from digest.models import Paper
from digest.text import tokens

INDEXED_WORDS = 4  # phrases up to this long are indexed; a longer keyword phrase is found by scanning


class Postings:
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
