"""Ranking-speed benchmark (not a test): many profiles against one large day.

    .venv/bin/python bench/rank_scale.py [--profiles 10000] [--papers 1000] [--seeded 0.1]

The day is built from the example dumps' real titles and abstracts, recombined
(title of one paper, abstract sentences of others) so the vocabulary is real
and every paper is distinct. Profiles get 3 to 8 keywords drawn from words and
two-word phrases of the titles, some with exclude terms, and a ``--seeded``
share of them two seed papers. Times the archive fit and ``rank.rank_all`` over
every profile in one call, and prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from digest import ingest, rank  # noqa: E402
from digest.models import Paper, Profile  # noqa: E402


def seed_papers() -> list[Paper]:
    papers: dict[str, Paper] = {}
    for path in sorted((ROOT / "examples" / "dumps").glob("*.txt")):
        dump = ingest.parse(path.read_text(encoding="utf-8"), source=path.name, today=date(2026, 11, 23))
        for paper in dump.papers:
            papers.setdefault(paper.id, paper)
    return list(papers.values())


def synthetic_day(base: list[Paper], count: int, rng: random.Random) -> list[Paper]:
    sentences = [s.strip() + "." for p in base for s in (p.abstract or "").split(". ") if len(s) > 40]
    day = []
    for n in range(count):
        title = f"{rng.choice(base).title} ({n})"
        abstract = " ".join(rng.sample(sentences, 6))
        norm = ingest.normalise_title(title)
        day.append(
            Paper(
                id=ingest.paper_id(norm),
                title=title,
                norm_title=norm,
                abstract=abstract,
                upvotes=rng.choice([None, rng.randint(0, 200)]),
                position=n + 1,
            )
        )
    return day


def synthetic_profiles(base: list[Paper], count: int, seeded: float, rng: random.Random) -> list[Profile]:
    words = [w for p in base for w in p.title.split() if len(w) > 4 and w.isalpha()]
    phrases = [" ".join(pair) for p in base for pair in zip(p.title.split(), p.title.split()[1:], strict=False)]
    out = []
    for n in range(count):
        terms = {
            (rng.choice(phrases) if rng.random() < 0.4 else rng.choice(words)).lower(): 1.0
            for _ in range(rng.randint(3, 8))
        }
        seeds = tuple(p.title for p in rng.sample(base, 2)) if rng.random() < seeded else ()
        exclude = ("survey",) if rng.random() < 0.2 else ()
        out.append(Profile(name=f"user{n}", keywords=tuple(terms.items()), seeds=seeds, exclude=exclude))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", type=int, default=10_000)
    parser.add_argument("--papers", type=int, default=1_000)
    parser.add_argument("--seeded", type=float, default=0.1, help="share of profiles with seed papers")
    args = parser.parse_args()
    rng = random.Random(7)
    base = seed_papers()
    day = synthetic_day(base, args.papers, rng)
    people = synthetic_profiles(base, args.profiles, args.seeded, rng)

    started = time.perf_counter()
    corpus = rank.Corpus(base + day)
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    ranked = rank.rank_all(day, people, corpus=corpus, normalise_title=ingest.normalise_title)
    rank_s = time.perf_counter() - started
    chosen = sum(map(len, ranked))
    print(
        json.dumps(
            {
                "profiles": args.profiles,
                "papers": args.papers,
                "seeded_profiles": sum(bool(p.seeds) for p in people),
                "archive": corpus.size,
                "fit_s": round(fit_s, 2),
                "rank_s": round(rank_s, 2),
                "items_chosen": chosen,
                "profiles_per_s": round(args.profiles / rank_s),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
