"""Ingest benchmark (not a test): parse and store throughput on dumps built from the seed papers.

    .venv/bin/python bench/ingest.py [--papers 10000] [--dumps 10]

Builds ``--dumps`` synthetic cards-layout dumps of ``--papers`` papers each from
the example dumps' real titles and abstracts (numbered so they are distinct,
with half of each dump repeating the previous one so the seen-set is exercised),
then times ``ingest.parse`` and ``Store.ingest`` into a fresh SQLite file.
Prints one JSON object: seconds, papers per second, peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from digest import ingest  # noqa: E402
from digest.store import Store  # noqa: E402


def seed_papers() -> list[tuple[str, str]]:
    pairs = []
    for path in sorted((ROOT / "examples" / "dumps").glob("*.txt")):
        dump = ingest.parse(path.read_text(encoding="utf-8"), source=path.name, today=date(2026, 11, 23))
        pairs += [(p.title, p.abstract or "") for p in dump.papers]
    return pairs


def build(pairs: list[tuple[str, str]], *, start: int, count: int) -> str:
    blocks = ["new", "Subscribe", "byAK and the research community", "Mar 14"]
    for n in range(start, start + count):
        title, abstract = pairs[n % len(pairs)]
        blocks += [f"{title} (part {n})", abstract, f"  • {n % 9 + 1} authors\n·\nMar 1, 2025 {n % 50}"]
    return "\n\n".join(blocks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--papers", type=int, default=10_000, help="papers per dump")
    parser.add_argument("--dumps", type=int, default=10, help="number of dumps")
    args = parser.parse_args()
    pairs = seed_papers()
    texts = [build(pairs, start=i * args.papers // 2, count=args.papers) for i in range(args.dumps)]

    started = time.perf_counter()
    dumps = [ingest.parse(t, source=f"bench-{i}.txt", today=date(2026, 11, 23)) for i, t in enumerate(texts)]
    parse_s = time.perf_counter() - started

    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "bench.sqlite3") as db:
        started = time.perf_counter()
        new = sum(db.papers.ingest(d, sha256=f"{i:064x}", at=datetime.now(UTC)).record.new for i, d in enumerate(dumps))
        store_s = time.perf_counter() - started
        distinct = db.papers.status().papers

    total = sum(len(d.papers) for d in dumps)
    print(
        json.dumps(
            {
                "dumps": args.dumps,
                "papers": total,
                "new": new,
                "distinct": distinct,
                "bytes": sum(len(t.encode()) for t in texts),
                "parse_s": round(parse_s, 3),
                "parse_papers_per_s": round(total / parse_s),
                "store_s": round(store_s, 3),
                "store_papers_per_s": round(total / store_s),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
