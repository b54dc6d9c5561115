"""Every profile's terms, in flat arrays over one vocabulary: what a batch of profiles asks of a day."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from digest.models import Profile
from digest.rank.corpus import Corpus, Keyword, Weights


@dataclass
class TermTable:
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
    alone: NDArray[np.bool_]  # per word: whether it earns the phrase partial credit on its own
    word_label: list[str]


@dataclass
class Plan:
    """All profiles' terms mapped onto one vocabulary, and the weight matrices over it."""

    vocabulary: dict[str, int]
    table: TermTable
    weights: sp.csr_matrix  # vocabulary x profiles: whole-term weights
    fractions: sp.csr_matrix  # vocabulary x phrases: each word's idf share of a multi-word phrase
    members: sp.csr_matrix  # vocabulary x phrases: 1 where the word is one of the phrase's distinctive words
    alone: sp.csr_matrix  # vocabulary x phrases: 1 where the word earns the phrase partial credit on its own
    partial: sp.csr_matrix  # phrases x profiles: partial_credit times the term's weight
    norms: NDArray[np.float32]  # per profile


def make_plan(profiles: Sequence[Profile], corpus: Corpus, weights: Weights) -> Plan:
    """Every profile's terms, in flat lists: a batch of 1,000 profiles has some 5,500 of them."""
    lists = _Lists()
    count: list[int] = []
    for profile in profiles:
        before = len(lists.label)
        for term_label, user_weight in profile.keywords:
            lists.add(term_label, user_weight, corpus.keyword(term_label))
        count.append(len(lists.label) - before)
    table = lists.table(count)
    column = np.repeat(np.arange(len(profiles)), table.count)  # per term: its profile
    totals = np.bincount(column, table.weight * (weights.title_boost + 1.0), minlength=len(profiles))
    norms = np.where(totals > 0, totals, 1.0).astype(np.float32)
    size, shared = max(len(lists.vocabulary), 1), max(len(lists.phrases), 1)
    terms_at = np.asarray(lists.partial_term, dtype=np.int64)
    rows, columns, shares = lists.split
    return Plan(
        vocabulary=lists.vocabulary,
        table=table,
        weights=_matrix(table.phrase, column, table.weight, (size, len(profiles))),
        fractions=_sparse(lists.split, (size, shared)),
        members=_sparse((rows, columns, [1.0] * len(shares)), (size, shared)),
        alone=_sparse(lists.standing, (size, shared)),
        partial=_matrix(
            np.asarray(lists.partial_phrase, dtype=np.int64),
            column[terms_at],
            weights.partial_credit * table.weight[terms_at],
            (shared, len(profiles)),
        ),
        norms=norms,
    )


@dataclass
class _Lists:
    """The flat lists a plan is made of, filled term by term."""

    vocabulary: dict[str, int] = field(default_factory=dict)
    phrases: dict[str, int] = field(default_factory=dict)
    split: tuple[list[int], list[int], list[float]] = field(default_factory=lambda: ([], [], []))
    standing: tuple[list[int], list[int], list[float]] = field(default_factory=lambda: ([], [], []))
    phrase: list[int] = field(default_factory=list)
    weight: list[float] = field(default_factory=list)
    label: list[str] = field(default_factory=list)
    word_count: list[int] = field(default_factory=list)
    word: list[int] = field(default_factory=list)
    fraction: list[float] = field(default_factory=list)
    alone: list[bool] = field(default_factory=list)
    word_label: list[str] = field(default_factory=list)
    partial_phrase: list[int] = field(default_factory=list)  # per multi-word term: its phrase ...
    partial_term: list[int] = field(default_factory=list)  # ... and the term

    def add(self, term_label: str, user_weight: float, keyword: Keyword) -> None:
        if not keyword.phrase:
            return
        self.phrase.append(self.vocabulary.setdefault(keyword.phrase, len(self.vocabulary)))
        self.weight.append(user_weight * keyword.idf)
        self.label.append(term_label)
        self.word_count.append(len(keyword.words))
        if not keyword.words:
            return
        # Words found apart earn part of the phrase's credit, by their share of its rarity
        # ("diffusion" is most of "diffusion model"), and more when more of them are there.
        indices = [self.vocabulary.setdefault(w, len(self.vocabulary)) for w in keyword.words]
        self.word += indices
        self.fraction += keyword.fractions
        self.alone += keyword.alone
        self.word_label += keyword.words
        if keyword.phrase not in self.phrases:
            self.phrases[keyword.phrase] = len(self.phrases)
            for index, share, alone in zip(indices, keyword.fractions, keyword.alone, strict=True):
                _append(self.split, index, self.phrases[keyword.phrase], share)
                if alone:
                    _append(self.standing, index, self.phrases[keyword.phrase], 1.0)
        self.partial_phrase.append(self.phrases[keyword.phrase])
        self.partial_term.append(len(self.label) - 1)

    def table(self, count: list[int]) -> TermTable:
        return TermTable(
            start=starts(np.asarray(count, dtype=np.int64)),
            count=np.asarray(count, dtype=np.int64),
            phrase=np.asarray(self.phrase, dtype=np.int64),
            weight=np.asarray(self.weight, dtype=np.float64),
            label=self.label,
            word_start=starts(np.asarray(self.word_count, dtype=np.int64)),
            word_count=np.asarray(self.word_count, dtype=np.int64),
            word=np.asarray(self.word, dtype=np.int64),
            fraction=np.asarray(self.fraction, dtype=np.float64),
            alone=np.asarray(self.alone, dtype=bool),
            word_label=self.word_label,
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


def starts(counts: NDArray[np.int64]) -> NDArray[np.int64]:
    """Where each of consecutive runs of these lengths starts."""
    return np.cumsum(counts) - counts


@dataclass
class Features:
    title: sp.csr_matrix  # papers x vocabulary, 0/1
    abstract: sp.csr_matrix  # papers x vocabulary, saturated counts in 0..1
    combined: sp.csr_matrix  # title_boost * title + abstract


@dataclass
class Likeness:
    """A day's papers' likeness to a set of papers per profile (seeds, liked, disliked or archive matches), held
    for the profiles that have such papers only (most profiles have no votes)."""

    owners: NDArray[np.int64]  # the profile column of each of score's columns
    score: NDArray[np.float32]  # papers x owners
    best: NDArray[np.int32]  # papers x owners: the most similar of the profile's rows (an index into ``rows``)
    rows: list[int]  # archive rows
    title: Callable[[int], str]  # an archive row's title

    def at(
        self, papers: NDArray[np.int64], columns: NDArray[np.int64], profiles: int
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """The likeness at (paper row, profile column) pairs (0 where the profile has none) and its closest row (-1)."""
        slot = np.full(profiles, -1, dtype=np.int64)
        slot[self.owners] = np.arange(len(self.owners))
        found = slot[columns]
        has = np.flatnonzero(found >= 0)
        value = np.zeros(len(papers), dtype=np.float32)
        value[has] = self.score[papers[has], found[has]]
        best = np.full(len(papers), -1, dtype=np.int64)
        best[has] = self.best[papers[has], found[has]]
        return value, best


def contrasted(like: dict[str, Likeness], *, profiles: int) -> dict[str, Likeness]:
    """The likenesses with a disliked paper's pull cut to what exceeds the paper's likeness to what the reader
    asked for (the best of its seed, liked and archive likeness): a paper is pushed down only as far as it is
    more like what they turned down, so a "no" near their interest does not sink the relevant papers beside it.
    (Reasons are made from these: "less like …" says what was taken off.)"""
    disliked = like["disliked"]
    if not len(disliked.owners):
        return like
    slot = np.full(profiles, -1, dtype=np.int64)  # each profile's column in disliked.score, or -1
    slot[disliked.owners] = np.arange(len(disliked.owners))
    positive = np.zeros(disliked.score.shape, dtype=np.float32)  # only the few profiles that disliked something
    for kind, found in like.items():
        if kind == "disliked":
            continue
        columns = slot[found.owners]
        mine = np.flatnonzero(columns >= 0)
        positive[:, columns[mine]] = np.maximum(positive[:, columns[mine]], found.score[:, mine])
    beyond = np.clip(disliked.score - positive, 0.0, None).astype(np.float32)
    return like | {"disliked": replace(disliked, score=beyond)}
