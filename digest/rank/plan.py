"""Every profile's terms, in flat arrays over one vocabulary: what a batch of profiles asks of a day."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from digest.models import Profile
from digest.rank.corpus import Corpus, Weights


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
    word_label: list[str]


@dataclass
class Plan:
    """All profiles' terms mapped onto one vocabulary, and the weight matrices over it."""

    vocabulary: dict[str, int]
    table: TermTable
    weights: sp.csr_matrix  # vocabulary x profiles: whole-term weights
    fractions: sp.csr_matrix  # vocabulary x phrases: each word's idf share of a multi-word phrase
    partial: sp.csr_matrix  # phrases x profiles: partial_credit times the term's weight
    norms: NDArray[np.float32]  # per profile


def make_plan(profiles: Sequence[Profile], corpus: Corpus, weights: Weights) -> Plan:
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
    table = TermTable(
        start=starts(np.asarray(count, dtype=np.int64)),
        count=np.asarray(count, dtype=np.int64),
        phrase=np.asarray(phrase, dtype=np.int64),
        weight=np.asarray(weight, dtype=np.float64),
        label=label,
        word_start=starts(np.asarray(word_count, dtype=np.int64)),
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
    return Plan(
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


def starts(counts: NDArray[np.int64]) -> NDArray[np.int64]:
    """Where each of consecutive runs of these lengths starts."""
    return np.cumsum(counts) - counts


@dataclass
class Features:
    title: sp.csr_matrix  # papers x vocabulary, 0/1
    abstract: sp.csr_matrix  # papers x vocabulary, saturated counts in 0..1
    combined: sp.csr_matrix  # title_boost * title + abstract


@dataclass
class Seeds:
    score: NDArray[np.float32]  # papers x profiles: Rocchio similarity, 0 where no seeds
    best: NDArray[np.int64]  # papers x profiles: the most similar seed (index into titles), -1 if none
    titles: list[str]
