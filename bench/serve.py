"""Serve benchmark (not a test): one-click POSTs and feedback GETs against `digest serve`, idle and while sending.

    .venv/bin/python bench/serve.py [--subscribers 10000] [--requests 2000] [--concurrency 16]

Builds a synthetic day (bench/scale.py's dump and profiles) for S subscribers,
starts `digest serve` (a real uvicorn, in its own process) and a bounded load
generator (C threads, each with its own keep-alive connection):

* idle: R one-click unsubscribes (POST /u/TOKEN, each a different subscriber),
  then R feedback GETs (the confirmation page);
* sending: the same while `digest send` (its own process) makes and delivers
  every digest to an SMTP sink, starting once the sink has its first message.

Prints one JSON object: requests per second and p50/p99 latency in ms for each,
and whether every POST was recorded (the subscribers are unsubscribed).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from scale import free_port, sink, synthetic_dump, write_profiles

from digest import links, pipeline
from digest.config import DatabaseSettings, DeliverySettings, Settings, SMTPSettings, SubscribersSettings
from digest.store import Store

SECRET = "bench-secret-0123456789"


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=2000, help="requests of each kind in each phase")
    parser.add_argument("--concurrency", type=int, default=16)
    return parser.parse_args()


def load(base: str, requests: list[tuple[str, str]], *, concurrency: int) -> dict[str, Any]:
    """Run (method, path) requests over ``concurrency`` connections: rate, latency, non-200 answers."""
    local = threading.local()
    timings: list[float] = []
    bad: list[int] = []

    def one(request: tuple[str, str]) -> None:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=base, timeout=30)
        method, path = request
        started = time.perf_counter()
        data = {"List-Unsubscribe": "One-Click"} if method == "POST" else None
        status = local.client.request(method, path, data=data).status_code
        timings.append(time.perf_counter() - started)
        if status != 200:
            bad.append(status)

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, requests))
    seconds = time.perf_counter() - started
    cuts = statistics.quantiles(timings, n=100)
    return {
        "requests": len(requests),
        "per_s": round(len(requests) / seconds),
        "p50_ms": round(cuts[49] * 1000, 1),
        "p99_ms": round(cuts[98] * 1000, 1),
        "not_200": len(bad),
    }


def world(root: Path, subscribers: int, port: int) -> tuple[Settings, dict[str, str], str]:
    rng = random.Random(7)
    settings = Settings(
        database=DatabaseSettings(path=root / "serve.sqlite3"),
        subscribers=SubscribersSettings(dir=root / "subscribers"),
        smtp=SMTPSettings(host="127.0.0.1", port=port, security="none", timeout_s=30),
        delivery=DeliverySettings(outbox_dir=root / "outbox", base_url="https://digest.example.org"),
    )
    (root / "day.txt").write_text(synthetic_dump(1000, rng), encoding="utf-8")
    write_profiles(settings.subscribers.dir, subscribers, rng)
    with Store.open(settings.database.path) as store:
        for outcome in pipeline.ingest_files([root / "day.txt"], papers=store.papers, settings=settings, now=_now()):
            assert outcome.error is None, outcome.error
        pipeline.sync_subscribers(store.subscribers, settings.subscribers.dir, at=_now())
        keys = store.subscribers.link_keys([s.name for s in store.subscribers.all()])
        paper = store.papers.archive()[0].id
    (root / "digest.toml").write_text(
        f'[database]\npath = "{settings.database.path}"\n[subscribers]\ndir = "{settings.subscribers.dir}"\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\ntimeout_s = 30\n'
        f'[delivery]\noutbox_dir = "{root / "outbox"}"\nbase_url = "https://digest.example.org"\n'
    )
    return settings, keys, paper


def _now() -> datetime:
    return datetime.now(UTC)


def requests_for(names: list[str], keys: dict[str, str], paper: str) -> tuple[list[tuple[str, str]], ...]:
    posts = [("POST", f"/u/{links.sign(SECRET, links.UNSUBSCRIBE, name=n, key=keys[n])}") for n in names]
    vote = f"+2026-11-26|{paper}"
    gets = [("GET", f"/f/{links.sign(SECRET, links.FEEDBACK, name=n, key=keys[n], data=vote)}") for n in names]
    return posts, gets


def main() -> None:
    args = arguments()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        smtp_port, web_port = free_port(), free_port()
        ready = multiprocessing.Event()
        server = multiprocessing.Process(target=sink, args=(smtp_port, ready), daemon=True)
        server.start()
        ready.wait(30)
        settings, keys, paper = world(root, args.subscribers, smtp_port)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")} | {"DIGEST_DELIVERY__SECRET": SECRET}
        command = [sys.executable, "-m", "digest"]
        web = subprocess.Popen(
            [*command, "serve", "--port", str(web_port)], cwd=root, env=env, stderr=subprocess.DEVNULL
        )
        base = f"http://127.0.0.1:{web_port}"
        _wait_up(base)
        names = sorted(keys)
        n = args.requests
        result: dict[str, Any] = {"subscribers": args.subscribers, "concurrency": args.concurrency}
        posts, gets = requests_for(names[:n], keys, paper)
        result["idle_post"] = load(base, posts, concurrency=args.concurrency)
        result["idle_get"] = load(base, gets, concurrency=args.concurrency)
        sender = subprocess.Popen([*command, "send"], cwd=root, env=env, stdout=subprocess.DEVNULL)
        started = time.perf_counter()
        while _sent(settings) == 0:  # until delivery is under way
            time.sleep(0.05)
        posts, gets = requests_for(names[n : 2 * n], keys, paper)
        result["sending_post"] = load(base, posts, concurrency=args.concurrency)
        result["sending_get"] = load(base, gets, concurrency=args.concurrency)
        result["send_still_running"] = sender.poll() is None
        sender.wait()
        result["send_s"] = round(time.perf_counter() - started, 1)
        web.terminate()
        web.wait()
        server.terminate()
        with Store.open(settings.database.path) as store:
            gone = {s.name for s in store.subscribers.all(include_unsubscribed=True) if s.status == "unsubscribed"}
        result["every_post_recorded"] = gone == set(names[: 2 * n])
    print(json.dumps(result))


def _wait_up(base: str) -> None:
    for _ in range(300):
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit("digest serve did not start")


def _sent(settings: Settings) -> int:
    with Store.open(settings.database.path) as store:
        return len(store.ledger.deliveries(states=("sent",), limit=1))


if __name__ == "__main__":
    main()
