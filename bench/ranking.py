"""Ranking-quality benchmark (not a test): nDCG@10 of the ranker against two baselines.

    .venv/bin/python bench/ranking.py [--json]

The labelled set is ours: ``bench/profiles/*.toml`` are seven interests written
as a person would (3-6 keywords each), and ``bench/data/qrels.json`` grades
papers of the four example dumps for each interest: 2 squarely on topic,
1 related, unlisted 0. The grades were assigned by reading titles and, where
unsure, abstracts, not by matching keywords.

Each example dump is one day. For every (interest, day) with at least one
relevant paper, each system ranks all of that day's papers and we take nDCG@10
(gain 2^grade - 1, log2 discount; ties broken by page position for every
system). Systems:

* ``digest``: ``digest.rank`` as shipped (keywords only; these profiles have no seeds);
* ``substring``: case-insensitive substring counts of each keyword, times its weight;
* ``bm25``: Okapi BM25 (k1 1.2, b 0.75) over title + abstract, with the same word
  folding as ``digest`` and the keywords' words as the query, weighted.

A third table is a new reader's first week: the labelled papers re-split into
pseudo-days (``--orders`` random orders), the first ``ARCHIVE_DAYS`` the archive
at sign-up, the rest later days. "every paper" is the ceiling of what answers
can teach this ranker: the reader answered all of the archive. A simulated reader answers onboarding (judged by
the labels: yes for grade 1 or 2) and, where asked, each day's question after
reading that day; nDCG@10 on the later days per way of starting (see
``first_week``), with means and spreads over the orders.

A second table ranks by seed papers alone: each interest's first two grade-2
papers (in ``qrels.json`` order) become its ``seeds`` and leave the evaluation.
``digest`` (best cosine to a seed) is compared with arxiv-sanity-lite's method,
a LinearSVC (C 0.01, balanced classes) per profile with the seeds as positives
and the rest of the archive as negatives, on the same TF-IDF features.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.svm import LinearSVC

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from digest import ingest, profiles, rank  # noqa: E402
from digest.models import Dump, Paper, Profile  # noqa: E402

Scorer = Callable[[Sequence[Paper], Profile], list[float]]
WEIGHTS = rank.Weights()  # --weights overrides it


def ndcg_at_10(ranking: Sequence[str], grades: dict[str, int]) -> float:
    gains = [2 ** grades.get(pid, 0) - 1 for pid in ranking[:10]]
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    ideal = sorted((2**g - 1 for g in grades.values()), reverse=True)[:10]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def order(papers: Sequence[Paper], scores: Sequence[float]) -> list[str]:
    ranked = sorted(range(len(papers)), key=lambda i: (-scores[i], papers[i].position or 0))
    return [papers[i].id for i in ranked]


def substring_scores(papers: Sequence[Paper], profile: Profile) -> list[float]:
    texts = [f"{p.title} {p.abstract or ''}".lower() for p in papers]
    return [sum(w * text.count(term.lower()) for term, w in profile.keywords) for text in texts]


class BM25:
    def __init__(self, archive: Sequence[Paper], *, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        docs = [rank.tokens(f"{p.title} {p.abstract or ''}") for p in archive]
        self.n = len(docs)
        self.df: Counter[str] = Counter()
        for doc in docs:
            self.df.update(set(doc))
        self.avgdl = sum(map(len, docs)) / max(self.n, 1)

    def idf(self, term: str) -> float:
        df = self.df.get(term, 0)
        return math.log(1 + (self.n - df + 0.5) / (df + 0.5))

    def __call__(self, papers: Sequence[Paper], profile: Profile) -> list[float]:
        query: dict[str, float] = {}
        for term, weight in profile.keywords:
            for word in rank.tokens(term):
                query[word] = query.get(word, 0.0) + weight
        out = []
        for p in papers:
            doc = rank.tokens(f"{p.title} {p.abstract or ''}")
            tf = Counter(doc)
            norm = self.k1 * (1 - self.b + self.b * len(doc) / self.avgdl)
            out.append(sum(w * self.idf(t) * tf[t] * (self.k1 + 1) / (tf[t] + norm) for t, w in query.items() if tf[t]))
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    parser.add_argument("--orders", type=int, default=5, help="random orders of the first week's pseudo-days")
    parser.add_argument(
        "--weights", default="{}", help="JSON overrides of rank.Weights, e.g. '{\"liked_weight\": 1.5}'"
    )
    args = parser.parse_args()
    global WEIGHTS  # noqa: PLW0603 - set once, read by every scorer
    WEIGHTS = dataclasses.replace(rank.Weights(), **json.loads(args.weights))
    started = time.perf_counter()

    days: list[Dump] = []
    for path in sorted((ROOT / "examples" / "dumps").glob("*.txt")):
        days.append(ingest.parse(path.read_text(encoding="utf-8"), source=path.name, today=date(2026, 11, 23)))
    archive = list({p.id: p for day in days for p in day.papers}.values())
    interests = [profiles.load(path)[0] for path in sorted((ROOT / "bench" / "profiles").glob("*.toml"))]
    qrels = json.loads((ROOT / "bench" / "data" / "qrels.json").read_text(encoding="utf-8"))

    corpus = rank.Corpus(archive)
    bm25 = BM25(archive)

    def digest_scores(papers: Sequence[Paper], profile: Profile) -> list[float]:
        ranked = rank.rank(
            papers, profile, corpus=corpus, normalise_title=ingest.normalise_title, keep_all=True, weights=WEIGHTS
        )
        score = {r.paper.id: r.score for r in ranked}
        return [score.get(p.id, -1.0) for p in papers]

    systems: dict[str, Scorer] = {"digest": digest_scores, "substring": substring_scores, "bm25": bm25}
    rows = []
    for profile in interests:
        grades = {row["id"]: row["grade"] for row in qrels[profile.name]}
        for day in days:
            day_grades = {p.id: grades[p.id] for p in day.papers if grades.get(p.id)}
            if not day_grades:
                continue
            row: dict[str, Any] = {"interest": profile.name, "day": day.source[:3], "relevant": len(day_grades)}
            for name, scorer in systems.items():
                row[name] = round(ndcg_at_10(order(day.papers, scorer(day.papers, profile)), day_grades), 4)
            rows.append(row)

    names = list(systems)
    per_day = {
        day.source[:3]: {n: round(_mean([r[n] for r in rows if r["day"] == day.source[:3]]), 4) for n in names}
        for day in days
    }
    per_interest = {
        p.name: {n: round(_mean([r[n] for r in rows if r["interest"] == p.name]), 4) for n in names} for p in interests
    }
    overall = {n: round(_mean([r[n] for r in rows]), 4) for n in names}
    seeded = seeds_only(days, archive, interests, qrels, corpus)
    learned = with_feedback(days, archive, interests, qrels, corpus)
    week = first_week(archive, interests, qrels, orders=args.orders)
    result = {
        "first_week": week,
        "seeds_only": seeded,
        "with_feedback": learned,
        "pairs": len(rows),
        "nDCG@10": overall,
        "per_day": per_day,
        "per_interest": per_interest,
        "seconds": round(time.perf_counter() - started, 2),
    }
    if args.json:
        print(json.dumps(result | {"rows": rows}))
        return
    print(f"nDCG@10 over {len(rows)} (interest, day) pairs; each dump is one day\n")
    print(f"{'':18}" + "".join(f"{n:>11}" for n in names))
    for day_name, values in per_day.items():
        print(f"{'day ' + day_name:18}" + "".join(f"{values[n]:>11.3f}" for n in names))
    for interest, values in per_interest.items():
        print(f"{interest:18}" + "".join(f"{values[n]:>11.3f}" for n in names))
    print(f"{'mean (all pairs)':18}" + "".join(f"{overall[n]:>11.3f}" for n in names))
    print(f"\nseeds only (2 seed papers per interest, no keywords), nDCG@10 over {int(seeded['pairs'])} pairs")
    print(f"{'':18}{'digest':>11}{'svm':>11}")
    print(f"{'mean (all pairs)':18}{seeded['digest']:>11.3f}{seeded['svm']:>11.3f}")
    print("\n".join(feedback_table(learned) + first_week_table(week)))
    print(f"\n{result['seconds']} s")


def seeds_only(
    days: Sequence[Dump],
    archive: Sequence[Paper],
    interests: Sequence[Profile],
    qrels: dict[str, list[dict[str, Any]]],
    corpus: rank.Corpus,
) -> dict[str, float]:
    features = corpus.vectors(archive)
    row_of = {p.id: i for i, p in enumerate(archive)}
    scores: dict[str, list[float]] = {"digest": [], "svm": []}
    for interest in interests:
        seeds = [r for r in qrels[interest.name] if r["grade"] == 2][:2]
        seed_ids = {r["id"] for r in seeds}
        profile = dataclasses.replace(interest, keywords=(), seeds=tuple(r["title"] for r in seeds))
        labels = [1 if p.id in seed_ids else 0 for p in archive]
        svm = LinearSVC(class_weight="balanced", C=0.01, max_iter=10000, tol=1e-6).fit(features, labels)
        grades = {r["id"]: r["grade"] for r in qrels[interest.name] if r["id"] not in seed_ids}
        for day in days:
            papers = [p for p in day.papers if p.id not in seed_ids]
            day_grades = {p.id: grades[p.id] for p in papers if grades.get(p.id)}
            if not day_grades:
                continue
            ranked = rank.rank(
                papers, profile, corpus=corpus, normalise_title=ingest.normalise_title, keep_all=True, weights=WEIGHTS
            )
            mine = {r.paper.id: r.score for r in ranked}
            scores["digest"].append(ndcg_at_10(order(papers, [mine.get(p.id, -1.0) for p in papers]), day_grades))
            margin = svm.decision_function(features[[row_of[p.id] for p in papers]])
            scores["svm"].append(ndcg_at_10(order(papers, list(margin)), day_grades))
    return {"pairs": float(len(scores["digest"]))} | {k: round(_mean(v), 4) for k, v in scores.items()}


def with_feedback(
    days: Sequence[Dump],
    archive: Sequence[Paper],
    interests: Sequence[Profile],
    qrels: dict[str, list[dict[str, Any]]],
    corpus: rank.Corpus,
) -> dict[str, Any]:
    """nDCG@10 on later days for a reader who votes on each day's top 10, per system (see the module doc)."""
    features = corpus.vectors(archive)
    row_of = {p.id: i for i, p in enumerate(archive)}
    first_day = {p.id: k for k, day in reversed(list(enumerate(days))) for p in day.papers}

    def digest(papers: Sequence[Paper], profile: Profile, votes: dict[str, int], upto: int) -> list[float]:
        ranked = rank.rank(
            papers, profile, corpus=corpus, normalise_title=ingest.normalise_title, keep_all=True,
            votes=[(pid, float(v)) for pid, v in votes.items()], weights=WEIGHTS,
        )  # fmt: skip
        mine = {r.paper.id: r.score for r in ranked}
        return [mine.get(p.id, -1.0) for p in papers]

    def keywords_only(papers: Sequence[Paper], profile: Profile, votes: dict[str, int], upto: int) -> list[float]:
        return digest(papers, profile, {}, upto)

    def svm(papers: Sequence[Paper], profile: Profile, votes: dict[str, int], upto: int) -> list[float]:
        """arxiv-sanity-lite: liked papers against every other paper seen so far, LinearSVC C=0.01, balanced."""
        if not any(v > 0 for v in votes.values()):
            return keywords_only(papers, profile, votes, upto)
        known = [p for p in archive if first_day[p.id] <= upto]
        labels = [1 if votes.get(p.id, 0) > 0 else 0 for p in known]
        model = LinearSVC(class_weight="balanced", C=0.01, max_iter=10000, tol=1e-6)
        model.fit(features[[row_of[p.id] for p in known]], labels)
        return list(model.decision_function(features[[row_of[p.id] for p in papers]]))

    def rocchio(papers: Sequence[Paper], profile: Profile, votes: dict[str, int], upto: int) -> list[float]:
        """Plain Rocchio: the keywords as a query, + 0.75 mean(liked) - 0.15 mean(disliked), cosine."""
        text = " ".join(" ".join([term] * max(1, round(weight))) for term, weight in profile.keywords)
        query = corpus.vectors([Paper(id="q", title=text, norm_title="q")]).toarray()[0]
        for sign, beta in ((1, 0.75), (-1, -0.15)):
            rows = [row_of[pid] for pid, v in votes.items() if v == sign]
            if rows:
                query = query + beta * np.asarray(features[rows].mean(axis=0)).ravel()
        return list(features[[row_of[p.id] for p in papers]] @ query)

    systems = {"digest": digest, "keywords only": keywords_only, "svm": svm, "rocchio": rocchio}
    after: dict[str, dict[str, list[float]]] = {name: {"1": [], "2": []} for name in systems}
    for profile in interests:
        grades = {r["id"]: r["grade"] for r in qrels[profile.name]}
        for name, system in systems.items():
            votes: dict[str, int] = {}
            for k, day in enumerate(days):
                papers = [p for p in day.papers if p.id not in votes]
                ranking = order(papers, system(papers, profile, votes, k))
                day_grades = {pid: grades[pid] for pid in ranking if grades.get(pid)}
                if k >= 1 and day_grades:
                    for key in ("1", "2")[: min(k, 2)]:
                        after[name][key].append(ndcg_at_10(ranking, day_grades))
                votes |= {pid: 1 if grades.get(pid) else -1 for pid in ranking[:10]}
    return {"pairs": {key: len(after["digest"][key]) for key in ("1", "2")}} | {
        name: {key: round(_mean(values), 4) for key, values in by.items()} for name, by in after.items()
    }


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


PSEUDO_DAYS = 8  # the labelled papers re-split into this many days per random order
ARCHIVE_DAYS = 3  # ... of which the first are the archive a new reader is onboarded from
STARTS = {
    "a: none": ("none", False),
    "a + question": ("none", True),
    "b: best ten": ("best", False),
    "c: random ten": ("random", False),
    "d: the mix": ("mix", False),
    "d + question": ("mix", True),
    "every paper": ("all", False),  # the ceiling: the reader answered every archive paper (~165)
}


def first_week(
    archive: Sequence[Paper], interests: Sequence[Profile], qrels: dict[str, list[dict[str, Any]]], *, orders: int
) -> dict[str, Any]:
    """nDCG@10 on later pseudo-days for each way of starting (``STARTS``): onboarding offers nothing, the ten best
    matches, ten random archive papers, or ``rank.offers``'s mix; with or without the daily question.

    Per order, the per-pair mean of each start; the spread is the standard deviation of those means over the
    orders, and each start's gain over another is paired (same order, interest and day)."""
    by_order: dict[str, list[float]] = {name: [] for name in STARTS}
    pairs = 0
    for seed in range(orders):
        shuffled = list(archive)
        random.Random(seed).shuffle(shuffled)
        days = [shuffled[k::PSEUDO_DAYS] for k in range(PSEUDO_DAYS)]
        known = [p for day in days[:ARCHIVE_DAYS] for p in day]
        corpora = {
            k: rank.Corpus([p for day in days[: k + 1] for p in day]) for k in range(ARCHIVE_DAYS - 1, PSEUDO_DAYS)
        }
        scores: dict[str, list[float]] = {name: [] for name in STARTS}
        for profile in interests:
            grades = {r["id"]: r["grade"] for r in qrels[profile.name]}
            answer = {p.id: 1.0 if grades.get(p.id) else -1.0 for p in archive}
            for name, (offer, asking) in STARTS.items():
                onboard = _offered(offer, known, profile, corpora[ARCHIVE_DAYS - 1], seed=seed)
                votes = {pid: answer[pid] for pid in onboard}
                for k in range(ARCHIVE_DAYS, PSEUDO_DAYS):
                    ndcg, question = _later_day(days[k], profile, votes, grades, corpora[k], asking=asking)
                    if ndcg is not None:
                        scores[name].append(ndcg)
                    if question is not None:
                        votes[question] = answer[question]
        pairs += len(scores["a: none"])
        for name, values in scores.items():
            by_order[name].append(_mean(values))
    return {"orders": orders, "pairs": pairs, "by_order": by_order}


def _offered(offer: str, known: Sequence[Paper], profile: Profile, corpus: rank.Corpus, *, seed: int) -> list[str]:
    """The ids onboarding offers: none, the best ten, ten at random, the chosen mix, or all of them."""
    if offer == "none":
        return []
    if offer == "all":
        return [p.id for p in known]
    if offer == "random":
        return [p.id for p in random.Random(f"{seed}:{profile.name}").sample(list(known), rank.ONBOARDING_SIZE)]
    ranked = rank.rank(
        known, profile, corpus=corpus, normalise_title=ingest.normalise_title, keep_all=True, weights=WEIGHTS
    )
    if offer == "best":
        return [r.paper.id for r in ranked[: rank.ONBOARDING_SIZE]]
    return [o.item.paper.id for o in rank.offers(ranked, corpus, line=profile.min_score)]


def _later_day(
    papers: Sequence[Paper],
    profile: Profile,
    votes: dict[str, float],
    grades: dict[str, int],
    corpus: rank.Corpus,
    *,
    asking: bool,
) -> tuple[float | None, str | None]:
    """A later day's nDCG@10 (None without a relevant paper), and the question asked after it, if any."""
    day = [p for p in papers if p.id not in votes]
    common = {"corpus": corpus, "normalise_title": ingest.normalise_title, "weights": WEIGHTS}
    voted = {profile.name: list(votes.items())} if votes else None
    [everything], _ = rank.rank_and_ask(day, [profile], votes=voted, keep_all=True, **common)  # type: ignore[arg-type]
    score = {r.paper.id: r.score for r in everything}
    day_grades = {p.id: grades[p.id] for p in day if grades.get(p.id)}
    ndcg = ndcg_at_10(order(day, [score.get(p.id, -1.0) for p in day]), day_grades) if day_grades else None
    if not asking:
        return ndcg, None
    _, [question] = rank.rank_and_ask(day, [profile], votes=voted, ask=[True], **common)  # type: ignore[arg-type]
    return ndcg, question.paper.id if question else None


def feedback_table(learned: dict[str, Any]) -> list[str]:
    lines = [
        "\nwith feedback: a reader votes on each day's top 10 (up if labelled relevant, else down), in date order;",
        "nDCG@10 on the later days (papers already shown left out), by how many days of votes came before",
    ]
    learners = [name for name in learned if name != "pairs"]
    lines.append(f"{'':18}" + "".join(f"{n:>15}" for n in learners))
    for after in ("1", "2"):
        label = f"after {after}+ day{'s' if after != '1' else ''}"
        lines.append(f"{label:18}" + "".join(f"{learned[n][after]:>15.3f}" for n in learners))
    return lines


def first_week_table(result: dict[str, Any]) -> list[str]:
    """The first week's comparison as lines: each start's mean and spread, and (d)'s paired gains."""
    by = result["by_order"]
    lines = [
        f"\na new reader's first week: {result['pairs']} (interest, later day) pairs in {result['orders']} orders;",
        "nDCG@10 per way of starting (spread: standard deviation of the per-order means)",
        f"{'':18}{'mean':>9}{'spread':>9}{'vs a':>9}",
    ]
    for name, values in by.items():
        gain = [x - y for x, y in zip(values, by["a: none"], strict=True)]
        lines.append(f"{name:18}{_mean(values):>9.3f}{_spread(values):>9.3f}{_mean(gain):>+9.3f}")
    lines.append("\npaired gain of d over each, per order: mean ± spread (smallest)")
    for d in ("d: the mix", "d + question"):
        for other in ("a: none", "b: best ten", "c: random ten"):
            gain = [x - y for x, y in zip(by[d], by[other], strict=True)]
            lines.append(f"{d} over {other:14} {_mean(gain):+.4f} ± {_spread(gain):.4f} ({min(gain):+.4f})")
    return lines


def _spread(values: Sequence[float]) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


if __name__ == "__main__":
    main()
