"""A year in a benchmark (not a test): N days of the real daily run for S subscribers, reported monthly.

    .venv/bin/python bench/year.py --days 365 --subscribers 10000 [--every 30] [--papers 50] [--profile DAY]

Each day gets a synthetic dump of ``--papers`` new papers (about Hugging Face's
real daily volume) recombining the example dumps' titles and sentences, and readers
change: 5% vote on a paper of their last digest, 0.1% unsubscribe, 0.2% join
(a new profile file). Then ``pipeline.run_daily`` runs as ``digest send`` does:
sync, make, deliver to an SMTP sink on 127.0.0.1 (a process of its own), and
retention, here ``bodies_days = 14`` and ``history_days = 90``. The clock is the
simulated day's, 23:00 UTC.

Every ``--every`` days (and on the last) it prints one JSON line: the day, the
active readers, the database's size (with its write-ahead log), rows per table,
that day's run in seconds and the median of the week's (a busy minute moves one
day, not the median), and the peak resident memory of the run (this process
and its workers, sampled every 20 ms). The last line compares: size on the last
day over day 120, the last day's run over day 30's, and its peak memory over day
30's; and, since readers join twice as fast as they leave (about 1.28 times as
many on day 365 as on day 120, 1.40 times day 30's), size and run per active
reader too (``*_per_reader``).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from scale import MemoryWatch, free_port, sink, start_sink, synthetic_dump, write_profiles  # noqa: E402

from digest import pipeline  # noqa: E402
from digest.config import (  # noqa: E402
    DatabaseSettings,
    DeliverySettings,
    RetentionSettings,
    Settings,
    SMTPSettings,
    SubscribersSettings,
)
from digest.pipeline.subscribers import RACY_NS  # noqa: E402
from digest.store import Store  # noqa: E402

START = datetime(2027, 1, 1, 23, 0, tzinfo=UTC)  # after 06:00 in every zone's day


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--papers", type=int, default=50, help="papers in each day's dump")
    parser.add_argument("--every", type=int, default=30, help="report every this many days")
    parser.add_argument(
        "--profile", type=int, action="append", default=[], metavar="DAY",
        help="profile this day's run, made in one process (cProfile: the 25 costliest calls to stderr); repeatable",
    )  # fmt: skip
    return parser.parse_args()


def readers_change(store: Store, folder: Path, rng: random.Random, *, now: datetime, joined: int) -> int:
    """The day's changes: 5% vote, 0.1% unsubscribe, 0.2% join (written as profile files). New joiners."""
    active = [s.name for s in store.subscribers.all()]
    for name in rng.sample(active, int(len(active) * 0.05)):
        last = store.digests.last(name)
        items = [paper for paper, _, _, _ in store.digests.items(last.id)] if last else []
        if items:
            store.feedback.vote(name, rng.choice(items), rng.choice((1, -1)), edition=None, at=now)
    for name in rng.sample(active, int(len(active) * 0.001)):
        store.subscribers.set_status(name, "unsubscribed", at=now, by="reader")
    count = max(1, int(len(active) * 0.002))
    write_profiles(folder, count, rng, first=joined)
    return joined + count


def rows(path: Path) -> dict[str, int]:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}  # noqa: S608


def size_mb(path: Path) -> float:
    wal = path.with_name(path.name + "-wal")
    return round((path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)) / 2**20, 1)


def one_day(store: Store, settings: Settings, root: Path, day: int, *, rng: random.Random, papers: int) -> float:
    """Day ``day``'s dump and run; its seconds."""
    now = START + timedelta(days=day)
    dump = root / "dumps" / f"day-{day:03d}.txt"
    dump.write_text(synthetic_dump(papers, rng, first=day * papers), encoding="utf-8")  # every paper new
    started = time.perf_counter()
    for outcome in pipeline.ingest_files([dump], papers=store.papers, settings=settings, now=now):
        assert outcome.error is None, outcome.error
    report = pipeline.run_daily(store, settings, clock=lambda: now)
    assert not report.failed and not report.profile_errors, (report.failed[:2], report.profile_errors[:2])
    return time.perf_counter() - started


@contextmanager
def profiled(wanted: bool, day: int, settings: Settings) -> Iterator[Settings]:
    """The settings for the block: with ``wanted``, the block under cProfile and its costliest calls
    (cumulative) on stderr, the digests made in this process (a profile does not see into workers)."""
    if not wanted:
        yield settings
        return
    profile = cProfile.Profile()
    profile.enable()
    try:
        yield settings.model_copy(update={"make": settings.make.model_copy(update={"workers": 1})})
    finally:
        profile.disable()
        print(f"--- day {day}: the 25 costliest calls, cumulative ---", file=sys.stderr)
        pstats.Stats(profile, stream=sys.stderr).sort_stats("cumulative").print_stats(25)


def per_reader(later: dict[str, Any], earlier: dict[str, Any], key: str) -> float:
    """``key`` per active reader on the later day over the same on the earlier day."""
    return float(later[key] / later["readers"]) / float(earlier[key] / earlier["readers"])


def main() -> None:
    args = arguments()
    rng = random.Random(7)
    seen: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "dumps").mkdir()
        settings = Settings(
            database=DatabaseSettings(path=root / "year.sqlite3"),
            subscribers=SubscribersSettings(dir=root / "subscribers"),
            smtp=SMTPSettings(host="127.0.0.1", port=free_port(), security="none", timeout_s=30),
            delivery=DeliverySettings(outbox_dir=root / "outbox"),
            retention=RetentionSettings(bodies_days=14, history_days=90),
        )
        write_profiles(settings.subscribers.dir, args.subscribers, rng)
        joined = args.subscribers
        time.sleep(RACY_NS / 1e9 + 0.5)  # written before the first sync, as a folder of profiles is
        server = start_sink(sink, settings.smtp.port)
        runs: list[float] = []
        with Store.open(settings.database.path) as store:
            for day in range(1, args.days + 1):
                memory = MemoryWatch(skip={server.pid or 0})
                with profiled(day in args.profile, day, settings) as today:
                    runs.append(one_day(store, today, root, day, rng=rng, papers=args.papers))
                peak = memory.stop()
                joined = readers_change(
                    store, settings.subscribers.dir, rng, now=START + timedelta(days=day, hours=1), joined=joined
                )
                if day % args.every == 0 or day == args.days or day in (30, 120):
                    readers = len(store.subscribers.all())
                    line = {"day": day, "readers": readers, "db_mb": size_mb(settings.database.path),
                            "run_s": round(runs[-1], 2), "run_week_median_s": round(statistics.median(runs[-7:]), 2),
                            "peak_rss_mb": round(peak, 1), "rows": rows(settings.database.path)}  # fmt: skip
                    seen[day] = line
                    if day % args.every == 0 or day == args.days:
                        print(json.dumps(line), flush=True)
        server.terminate()
    last = seen[args.days]
    ratios: dict[str, Any] = {"days": args.days, "subscribers": args.subscribers}
    if 120 in seen:
        ratios["db_last_over_day120"] = round(last["db_mb"] / seen[120]["db_mb"], 2)
        ratios["db_last_over_day120_per_reader"] = round(per_reader(last, seen[120], "db_mb"), 2)
    if 30 in seen:
        ratios["run_last_over_day30"] = round(last["run_s"] / seen[30]["run_s"], 2)
        ratios["run_week_last_over_day30"] = round(last["run_week_median_s"] / seen[30]["run_week_median_s"], 2)
        ratios["run_week_last_over_day30_per_reader"] = round(per_reader(last, seen[30], "run_week_median_s"), 2)
        ratios["rss_last_over_day30"] = round(last["peak_rss_mb"] / seen[30]["peak_rss_mb"], 2)
    print(json.dumps(ratios))


if __name__ == "__main__":
    main()
