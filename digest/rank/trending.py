"""Trending: a small prior from upvotes and page position, and the day's most trending papers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from numpy.typing import NDArray

from digest.models import Paper
from digest.rank.corpus import document


def trend_prior(papers: Sequence[Paper]) -> NDArray[np.float32]:
    """0..1 per paper: half from upvotes (log-scaled to the day's most), half from page position."""
    upvotes = np.asarray([p.upvotes or 0 for p in papers], dtype=np.float32)
    top = float(np.log1p(upvotes.max())) if len(upvotes) else 0.0
    votes = np.log1p(upvotes) / top if top > 0 else np.zeros_like(upvotes)
    positions = np.asarray([p.position or len(papers) for p in papers], dtype=np.float32)
    place = 1.0 - (positions - 1.0) / max(len(papers) - 1, 1)
    return (0.5 * votes + 0.5 * np.clip(place, 0.0, 1.0)).astype(np.float32)


def trending_order(papers: Sequence[Paper]) -> list[Paper]:
    """The day's papers, most trending first (upvotes, then page position): computed once per day."""
    value = trend_prior(papers)
    return [papers[i] for i in sorted(range(len(papers)), key=lambda i: (-value[i], papers[i].position or 0))]


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
        if needles and any(n in " ".join(document(paper).casefold().split()) for n in needles):
            continue
        chosen.append(paper)
        if len(chosen) == count:
            break
    return chosen
