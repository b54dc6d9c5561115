"""Scale benchmark (not a test): one synthetic day for S subscribers, every stage timed in one run.

    .venv/bin/python bench/scale.py --subscribers 1000 --papers 1000 [--stage all|ingest|rank|render|smtp]
                                    [--connections 4]

Builds a dump of N papers recombining the example dumps' real titles and
abstract sentences (so the vocabulary is real), and S profiles of 3 to 8
keywords drawn from that vocabulary, in mixed time zones, each with an email
address. Then runs the real pipeline against a fresh SQLite file and an SMTP
sink (aiosmtpd on 127.0.0.1 in a separate process, accepting and discarding):

* ingest: parse the dump and store it;
* sync: read the S profile files into the database; ``resync_s``: a second sync, nothing
  changed (the files' stamps say so: none is read);
* rank / render / freeze: making every subscriber's digest (make_digests, split by phase).
  With several batches due, ``workers`` processes make them side by side: ``rank_busy_s``
  is the seconds all of them spent ranking, ``rank_s`` that over the workers (its share
  of the wall-clock ``make_s``), and so on for each phase;
* smtp: delivering every message to the sink (the ledger updated as in production),
  with the CPU seconds this process and the sink spent meanwhile (on two cores, the
  two together are the limit);
* resend: a second `send`, which must send nothing.

``stored_bytes_per_digest`` is the content kept for each digest made (its MIME body and
whatever that does not give back), the figure retention's ``bodies_days`` multiplies.

``--stage run`` measures the day's run as ``digest send`` does it instead: after the sync,
``pipeline.run_once`` makes the digests and delivers each batch as soon as it is frozen
(``run_s``); then every delivery is set back to pending and sent again by itself, the
pure hand-off of the same messages (``handoff_s``). ``run_over_handoff`` is their ratio.

Every bench reader is new, so each digest ends with the daily question (``[rank] ask_days``);
``--no-ask`` makes them without it. ``--stage ask`` compares the two in one process, which the
machine's drift between runs cannot blur: after a warm-up, the subscribers are made in eight
equal parts, alternately with and without the question (ABBA, twice), one process, and
``ask_over_no_ask`` is the ratio of the steady milliseconds a digest (rank, render, freeze).

``--database postgresql://…`` runs against that (empty) PostgreSQL database instead of a
SQLite file; ``bench/pgcluster.py`` starts a throwaway server with its default durability.
With ``--stage run --processes N`` the run is N processes side by side (as N daemons on
one database would share the day: claims, ``pipeline.claims``; each with ``[make] workers``
the cores over N, as on one host); ``run_s`` is until the
last one ends, and ``digests_made_twice``, ``messages_sent_twice`` (the sink counts what
it accepted) and ``made_elsewhere`` say how the work was shared.

Prints one JSON object: per-stage seconds, messages per second and memory:
``peak_rss_mb`` is the most this process and its workers held together (sampled
every 20 ms; the sink runs apart and is not counted), ``peak_rss_bound_mb`` this
process's peak plus the largest worker's peak once per worker, a bound as if
every peak fell at once. ``--stage`` stops after that stage.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import multiprocessing
import os
import random
import resource
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pydantic import SecretStr  # noqa: E402

from digest import ingest, pipeline  # noqa: E402
from digest.config import DatabaseSettings, DeliverySettings, Settings, SMTPSettings, SubscribersSettings  # noqa: E402
from digest.pipeline.subscribers import RACY_NS  # noqa: E402
from digest.store import Store  # noqa: E402

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Asia/Kolkata", "America/Los_Angeles"]
STAGES = ("ingest", "sync", "rank", "render", "smtp", "all", "run", "ask")


@functools.cache  # the example dumps, parsed once
def seed_texts() -> tuple[list[str], list[str]]:
    titles: list[str] = []
    sentences: list[str] = []
    for path in sorted((ROOT / "examples" / "dumps").glob("*.txt")):
        dump = ingest.parse(path.read_text(encoding="utf-8"), source=path.name, today=date(2026, 11, 23))
        for paper in dump.papers:
            titles.append(paper.title)
            sentences += [s.strip() + "." for s in (paper.abstract or "").split(". ") if len(s) > 40]
    return titles, sentences


def synthetic_dump(count: int, rng: random.Random, *, first: int = 0) -> str:
    """A page of ``count`` papers: real titles, each marked ``(vN)`` from ``first`` on (so pages made with
    different ``first`` share no title), and abstracts of six real sentences."""
    titles, sentences = seed_texts()
    blocks = ["new", "Subscribe", "byAK and the research community", "Nov 23"]
    for n in range(first, first + count):
        blocks += [f"{rng.choice(titles)} (v{n})", " ".join(rng.sample(sentences, 6))]
        blocks.append(f"  • {rng.randint(1, 12)} authors\n·\nNov {rng.randint(1, 22)}, 2026 {rng.randint(0, 300)}")
    return "\n\n".join(blocks)


def write_profiles(folder: Path, count: int, rng: random.Random, *, first: int = 0) -> None:
    """``count`` profile files, ``u000000.toml`` on (from ``u{first}``), of 3 to 8 keywords from the seeds."""
    titles, _ = seed_texts()
    words = sorted({w.lower().strip(":,()") for t in titles for w in t.split() if len(w) > 5 and w.isalpha()})
    pairs = [" ".join(t.lower().split()[i : i + 2]) for t in titles for i in range(0, len(t.split()) - 1, 3)]
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(first, first + count):
        terms = {rng.choice(pairs) if rng.random() < 0.3 else rng.choice(words) for _ in range(rng.randint(3, 8))}
        keywords = ", ".join(json.dumps(t) for t in sorted(terms) if any(c.isalnum() for c in t))
        (folder / f"u{n:06d}.toml").write_text(
            f'email = "u{n:06d}@example.org"\ntimezone = "{ZONES[n % len(ZONES)]}"\nsend_at = "06:00"\n'
            f'empty_day = "notice"\nkeywords = [{keywords}]\n'
        )


def sink(port: int, ready: Any, accepted: Any = None) -> None:
    """An SMTP server that accepts every message and keeps nothing (``accepted``: a shared count of them)."""

    class Discard:
        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:  # noqa: N802
            if accepted is not None:
                with accepted.get_lock():
                    accepted.value += 1
            return "250 OK"

    controller = Controller(Discard(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    while True:
        time.sleep(3600)


class MemoryWatch:
    """The peak resident memory of this process and its children together, sampled every 20 ms.

    ``ru_maxrss`` gives each process's own peak, and the workers' and this
    process's peaks need not fall at the same moment; this adds up what is
    resident at each sample. ``skip``: processes not to count (the sink).
    """

    def __init__(self, skip: set[int]) -> None:
        self.peak = 0
        self._skip = skip
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _resident(self, pid: int) -> int:
        try:
            return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * self._page
        except (OSError, IndexError, ValueError):
            return 0  # a process that just ended

    def _children(self, pid: int) -> list[int]:
        found: list[int] = []
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found += [int(c) for c in (task / "children").read_text().split()]
        return [c for c in found if c not in self._skip]

    def _run(self) -> None:
        me = os.getpid()
        while not self._done.wait(0.02):
            self.peak = max(self.peak, self._resident(me) + sum(map(self._resident, self._children(me))))

    def stop(self) -> float:
        self._done.set()
        self._thread.join()
        return self.peak / 2**20


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def vote(store: Store, share: float, rng: random.Random, *, now: datetime) -> int:
    """Votes for ``share`` of the subscribers: 3 "more like this" and 2 "less like this" on random papers."""
    papers = [p.id for p in store.papers.archive()]
    names = [s.name for s in store.subscribers.all()]
    count = 0
    for name in rng.sample(names, int(len(names) * share)):
        for n, paper in enumerate(rng.sample(papers, 5)):
            count += store.feedback.vote(name, paper, 1 if n < 3 else -1, edition=None, at=now - timedelta(days=n * 10))
    return count


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--papers", type=int, default=1000)
    parser.add_argument("--stage", choices=STAGES, default="all", help="stop after this stage")
    parser.add_argument("--voters", type=float, default=0.0, help="share of subscribers with votes (5 each)")
    parser.add_argument("--database", default="", help="an empty PostgreSQL database's URL (default: a SQLite file)")
    parser.add_argument("--processes", type=int, default=1, help="with --stage run: that many runs side by side")
    parser.add_argument("--workers", type=int, default=0, help="[make] workers (default: the setting's, one per core)")
    parser.add_argument(
        "--no-links", action="store_true", help="no base URL and secret: digests without signed vote links"
    )
    parser.add_argument(
        "--no-ask",
        action="store_true",
        help="[rank] ask_days = 0: no daily question (else each new reader gets one)",
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=SMTPSettings().connections,
        help="parallel SMTP connections ([smtp] connections)",
    )
    return parser.parse_args()


def smtp_stage(store: Store, settings: Settings, *, sink_pid: int | None, now: datetime) -> dict[str, Any]:
    """Deliver every message to the sink, then a second send, which must send nothing."""
    result: dict[str, Any] = {}
    started, cpu, sink_cpu = time.perf_counter(), time.process_time(), cpu_seconds(sink_pid)
    report = pipeline.deliver(store, settings, clock=lambda: now)
    seconds = time.perf_counter() - started
    result["smtp_client_cpu_s"] = round(time.process_time() - cpu, 2)
    result["smtp_sink_cpu_s"] = round(cpu_seconds(sink_pid) - sink_cpu, 2)
    result["smtp_s"] = round(seconds, 2)
    result["sent"] = len(report.sent)
    result["failed"] = len(report.failed) + len(report.retries)
    result["messages_per_s"] = round(len(report.sent) / seconds) if seconds else None
    again = pipeline.run_daily(store, settings, clock=lambda: now)
    result["resend_sent"] = len(again.sent) + len(again.made)
    return result


def make_stage(store: Store, settings: Settings, *, now: datetime) -> dict[str, Any]:
    """Every due digest made and frozen, timed by phase."""
    result: dict[str, Any] = {}
    timings: dict[str, float] = {}
    started, cpu = time.perf_counter(), cpu_with_children()
    made = pipeline.make_digests(store, settings, now=now, timings=timings)
    result["make_s"] = round(time.perf_counter() - started, 2)
    spent = cpu_with_children() - cpu
    result["workers"] = made.workers
    # Workers make batches side by side: a phase's share of make_s is its seconds over the workers.
    result |= {f"{phase}_s": round(seconds / made.workers, 2) for phase, seconds in timings.items()}
    result |= {f"{phase}_busy_s": round(seconds, 2) for phase, seconds in timings.items()}
    result["digests"] = len(made.made)
    result["items"] = sum(n for _, _, n in made.made)
    result["stored_bytes_per_digest"] = stored_bytes(store)
    result["reasons_bytes_per_digest"] = reasons_bytes(store)
    if made.made:
        # CPU per digest: all of it (this process and the workers, their start and warm-up included), and the
        # steady part (the phases' seconds, each batch's rank, render and freeze, without the fixed costs).
        result["make_cpu_ms_per_digest"] = round(spent * 1000 / len(made.made), 3)
        result["steady_ms_per_digest"] = round(sum(timings.values()) * 1000 / len(made.made), 3)
    return result


WARM_UP = 0.1  # the share of subscribers made first in --stage ask, not compared: the archive's space, the
# templates, every paper's cached fragments
ASK_ORDER = (True, False, False, True, False, True, True, False)  # ABBA BAAB: drift falls on both alike


def ask_stage(store: Store, settings: Settings, *, now: datetime) -> dict[str, Any]:
    """Steady ms a digest with the daily question and without, made alternately in one process."""
    one = settings.make.model_copy(update={"workers": 1})
    names = sorted(s.name for s in store.subscribers.all())
    spent: dict[bool, list[float]] = {True: [], False: []}
    made: dict[bool, int] = {True: 0, False: 0}
    parts_ms: list[str] = []  # in the order made
    warm = int(len(names) * WARM_UP)
    size = (len(names) - warm) // len(ASK_ORDER)
    parts = [set(names[:warm])] + [set(names[warm + k * size : warm + (k + 1) * size]) for k in range(8)]
    for number, part in enumerate(parts):
        asking = ASK_ORDER[number - 1] if number else True
        rank_settings = settings.rank.model_copy(update={"ask_days": 30 if asking else 0})
        timings: dict[str, float] = {}
        report = pipeline.make_digests(
            store,
            settings.model_copy(update={"make": one, "rank": rank_settings}),
            now=now,
            names=part,
            timings=timings,
        )
        if number:
            spent[asking].append(sum(timings.values()))
            made[asking] += len(report.made)
            parts_ms.append(
                f"{'ask' if asking else 'no'} {sum(timings.values()) * 1000 / max(len(report.made), 1):.3f}"
            )
    per = {asking: sum(spent[asking]) * 1000 / max(made[asking], 1) for asking in (True, False)}
    return {
        "ask_ms_per_digest": round(per[True], 3),
        "no_ask_ms_per_digest": round(per[False], 3),
        "ask_over_no_ask": round(per[True] / per[False], 3),
        "parts_ms_per_digest": parts_ms,
    }


def cpu_with_children() -> float:
    """CPU seconds of this process, of its children that have ended, and of the workers its forkserver started
    (that have ended: the forkserver collects them, and lives on)."""
    own, children = (resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime + forkserver_cpu()


def forkserver_cpu() -> float:
    """User + system CPU seconds of this process's forkserver and its ended children (Linux /proc); 0 without one."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == os.getpid() and b"forkserver" in (entry / "cmdline").read_bytes():
                total += sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return total


def reasons_bytes(store: Store) -> int:
    """The bytes kept of the digests' reasons (the why of each item), per digest with items."""
    conn = store.db.conn
    digests = conn.execute("SELECT count(DISTINCT digest) FROM digest_items").fetchone()[0] or 1
    kept = int(conn.execute("SELECT sum(length(why)) FROM digest_items").fetchone()[0] or 0)
    sqlite_columns = () if store.db.dialect == "postgresql" else conn.execute("PRAGMA table_info(digests)")
    if store.db.dialect == "postgresql" or any(row[1] == "reasons" for row in sqlite_columns):
        # schema 17 on (PostgreSQL starts there): one record a digest; items frozen before keep their why
        kept += int(conn.execute("SELECT sum(length(reasons)) FROM digests").fetchone()[0] or 0)
    return round(kept / digests)


def stored_bytes(store: Store) -> int:
    """The content kept per digest that has any, in bytes: the ``bodies`` table from schema 14, the digests'
    own columns before (so this file measures an older checkout the same way)."""
    conn = store.db.conn
    if store.db.dialect == "postgresql" or conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'bodies'").fetchone():
        query = "SELECT avg(coalesce(length(mime), 0) + coalesce(length(parts), 0)) FROM bodies"
    else:
        query = (
            "SELECT avg(coalesce(length(body), 0) + coalesce(length(mail), 0)) FROM digests"
            " WHERE body IS NOT NULL OR mail IS NOT NULL"
        )
    return round(conn.execute(query).fetchone()[0] or 0)


def _one_run(settings: Settings, now: datetime, made: Any) -> None:
    """One of several runs side by side (a process of its own, its own connection)."""
    with Store.open(settings.database.location) as store:
        report = pipeline.run_once(store, settings, clock=lambda: now)
    with made.get_lock():
        made[0] += len(report.made)
        made[1] += report.made_elsewhere
        made[2] += len(report.sent)


def shared_run_stage(store: Store, settings: Settings, processes: int, *, now: datetime) -> dict[str, Any]:
    """The day's run as ``processes`` processes sharing it; how long until the last ended, and how they shared."""
    made = multiprocessing.Array("l", 3)
    # The cores shared out, as an operator running N daemons on one host sets [make] workers: cores / N each.
    each = max(1, (os.cpu_count() or 1) // processes)
    settings = settings.model_copy(update={"make": settings.make.model_copy(update={"workers": each})})
    runs = [multiprocessing.Process(target=_one_run, args=(settings, now, made)) for _ in range(processes)]
    started = time.perf_counter()
    for run in runs:
        run.start()
    for run in runs:
        run.join()
        assert run.exitcode == 0, f"a run ended with {run.exitcode}"
    result: dict[str, Any] = {"run_s": round(time.perf_counter() - started, 2), "processes": processes}
    result["digests"], result["made_elsewhere"], result["sent"] = made[0], made[1], made[2]
    digests, people = store.db.conn.execute("SELECT count(*), count(DISTINCT subscriber) FROM digests").fetchone()
    result["digests_made_twice"] = digests - people
    result["stored_bytes_per_digest"] = stored_bytes(store)
    return result


def run_stage(store: Store, settings: Settings, *, sink_pid: int | None, now: datetime) -> dict[str, Any]:
    """The run as ``digest send`` does it (making and sending side by side), then the same messages sent alone."""
    result: dict[str, Any] = {}
    started, sink_cpu = time.perf_counter(), cpu_seconds(sink_pid)
    report = pipeline.run_once(store, settings, clock=lambda: now)
    result["run_s"] = round(time.perf_counter() - started, 2)
    result["run_sink_cpu_s"] = round(cpu_seconds(sink_pid) - sink_cpu, 2)
    result["digests"], result["sent"] = len(report.made), len(report.sent)
    result["stored_bytes_per_digest"] = stored_bytes(store)
    with store.db.transaction() as conn:  # a benchmark resets the ledger, to send it all again
        conn.execute("UPDATE deliveries SET state = 'pending', attempts = 0, next_try = NULL")
    started = time.perf_counter()
    again = pipeline.deliver(store, settings, clock=lambda: now)
    result["handoff_s"] = round(time.perf_counter() - started, 2)
    assert len(again.sent) == len(report.sent)
    result["run_over_handoff"] = round(result["run_s"] / result["handoff_s"], 2)
    return result


def set_up_day(root: Path, args: argparse.Namespace, rng: random.Random) -> Settings:
    """A day in ``root``: a dump of ``--papers`` papers and ``--subscribers`` profiles, and settings for them
    (a fresh database, the outbox, SMTP to 127.0.0.1 on a free port with ``--connections`` sessions)."""
    settings = Settings(
        database=DatabaseSettings(path=root / "bench.sqlite3", url=SecretStr(args.database)),
        subscribers=SubscribersSettings(dir=root / "subscribers"),
        smtp=SMTPSettings(
            host="127.0.0.1", port=free_port(), security="none", timeout_s=30, connections=args.connections
        ),
        delivery=DeliverySettings(
            outbox_dir=root / "outbox",
            # As in production: signed vote, preferences and unsubscribe links in every digest.
            base_url="" if args.no_links else "https://digest.example.org",
            secret=SecretStr("" if args.no_links else "bench-signing-secret-" + "x" * 32),
        ),
    )
    if args.workers:
        settings = settings.model_copy(update={"make": settings.make.model_copy(update={"workers": args.workers})})
    if args.no_ask:
        settings = settings.model_copy(update={"rank": settings.rank.model_copy(update={"ask_days": 0})})
    (root / "day.txt").write_text(synthetic_dump(args.papers, rng), encoding="utf-8")
    write_profiles(root / "subscribers", args.subscribers, rng)
    return settings


def start_sink(target: Callable[..., None], port: int | None, *extra: Any) -> multiprocessing.Process:
    """An SMTP sink (``target(port, ready, *extra)``) in a process of its own, once it listens."""
    ready = multiprocessing.Event()
    server = multiprocessing.Process(target=target, args=(port, ready, *extra), daemon=True)
    server.start()
    ready.wait(30)
    return server


def main() -> None:
    args = arguments()
    rng = random.Random(7)
    result: dict[str, Any] = {"subscribers": args.subscribers, "papers": args.papers}
    now = datetime(2026, 11, 23, 23, 0, tzinfo=UTC)  # after 06:00 in every zone's day
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = set_up_day(root, args, rng)
        # A file written within RACY_NS of a sync is read again at the next one, in case it changes within the
        # mtime's granularity. Profiles are written before the day's run, not during it: wait that out.
        time.sleep(RACY_NS / 1e9 + 0.5)
        accepted = multiprocessing.Value("l", 0)
        server = start_sink(sink, settings.smtp.port, accepted)
        memory = MemoryWatch(skip={server.pid or 0})
        with Store.open(settings.database.location) as store:
            started = time.perf_counter()
            for outcome in pipeline.ingest_files([root / "day.txt"], papers=store.papers, settings=settings, now=now):
                assert outcome.error is None, outcome.error
            result["ingest_s"] = round(time.perf_counter() - started, 2)
            if args.stage != "ingest":
                started = time.perf_counter()
                sync = pipeline.sync_subscribers(store.subscribers, settings.subscribers.dir, at=now)
                assert not sync.errors, sync.errors[:3]
                result["votes"] = vote(store, args.voters, rng, now=now)
                result["sync_s"] = round(time.perf_counter() - started, 2)
                started = time.perf_counter()
                again = pipeline.sync_subscribers(store.subscribers, settings.subscribers.dir, at=now)
                assert not (again.changes or again.removed or again.errors)
                result["resync_s"] = round(time.perf_counter() - started, 2)
            if args.stage == "run" and args.processes > 1:
                result |= shared_run_stage(store, settings, args.processes, now=now)
                result["messages_sent_twice"] = accepted.value - args.subscribers
            elif args.stage == "run":
                result |= run_stage(store, settings, sink_pid=server.pid, now=now)
            elif args.stage == "ask":
                result |= ask_stage(store, settings, now=now)
            elif args.stage not in ("ingest", "sync"):
                result |= make_stage(store, settings, now=now)
            if args.stage in ("smtp", "all"):
                result |= smtp_stage(store, settings, sink_pid=server.pid, now=now)
        result["peak_rss_mb"] = round(memory.stop(), 1)
        server.terminate()
    stages = ("ingest_s", "sync_s", "make_s", "smtp_s", "run_s")  # make_s: rank, render, freeze; run_s: make + send
    result["total_s"] = round(sum(float(result.get(k) or 0.0) for k in stages), 2)
    own, worker = (resource.getrusage(who).ru_maxrss / 1024 for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    result["peak_rss_bound_mb"] = round(own + result.get("workers", 0) * worker, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
