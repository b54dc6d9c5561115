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
    result = {
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
    print("\nwith feedback: a reader votes on each day's top 10 (up if labelled relevant, else down), in date order;")
    print("nDCG@10 on the later days (papers already shown left out), by how many days of votes came before")
    learners = [name for name in learned if name != "pairs"]
    print(f"{'':18}" + "".join(f"{n:>15}" for n in learners))
    for after in ("1", "2"):
        label = f"after {after}+ day{'s' if after != '1' else ''}"
        print(f"{label:18}" + "".join(f"{learned[n][after]:>15.3f}" for n in learners))
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


if __name__ == "__main__":
    main()
