"""Write synthetic Daily Papers dumps from known papers, so tests can compare a parse with the truth."""

from __future__ import annotations

from dataclasses import dataclass

CARDS_HEADER = [
    "new",
    "Get trending papers in your email inbox!",
    "Subscribe",
    "Daily Papers",
    "byAK and the research community",
]
FLAT_HEADER = ["Get trending papers in your email inbox once a day!", "Get trending papers in your email inbox!"]


@dataclass(frozen=True)
class Card:
    title: str
    abstract: str | None = "We study a problem. We propose a method that works well. Experiments confirm it works."
    who: str | None = None  # "6 authors", "1 author" or an organization line
    published: str | None = None  # "Dec 14, 2022"
    upvotes: int | None = None


def cards(papers: list[Card], *, page_day: str | None = "Mar 14", header: bool = True) -> str:
    """The cards layout: blank-line separated blocks, optional meta block per paper."""
    blocks: list[str] = []
    if header:
        blocks += CARDS_HEADER
        if page_day:
            blocks.append(page_day)
    for paper in papers:
        blocks.append(paper.title)
        if paper.abstract is not None:
            blocks.append(paper.abstract)
        meta: list[str] = []
        if paper.who is not None:
            meta.append(f"  • {paper.who}" if paper.who[0].isdigit() else paper.who)
        if paper.who is not None or paper.published is not None:
            meta.append("·")
        if paper.published is not None:
            meta.append(paper.published + (f" {paper.upvotes}" if paper.upvotes is not None else ""))
        if meta:
            blocks.append("\n".join(meta))
    return "\n\n".join(blocks)


def flat(papers: list[Card]) -> str:
    """The flat layout: two header lines, then title and abstract lines; the first title glued to Subscribe."""
    lines = list(FLAT_HEADER)
    for index, paper in enumerate(papers):
        lines.append(("Subscribe" if index == 0 else "") + paper.title)
        if paper.abstract is not None:
            lines.append(paper.abstract)
    return "\n".join(lines) + "\n"
