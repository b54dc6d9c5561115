"""SMTP client benchmark (not a test): the project's delivery against plain smtplib, to a sink that only accepts.

    .venv/bin/python bench/smtp_client.py [--subscribers 10000] [--papers 1000] [--connections 8]

aiosmtpd spends 1.5-2 ms of its CPU a message, so against it the sink is the
limit and the client's own speed does not show. ``FastSink`` (here, in a
process of its own) speaks just enough SMTP to take messages: it answers each
command line and reads DATA to the final dot, and keeps nothing.

One run, one sink:

* make: S subscribers' digests made and frozen (``pipeline.make_digests``), as a day's run does;
* reference: every email of the ledger prebuilt in memory (each built as the
  delivery builds it), then pushed by plain ``smtplib.SMTP.sendmail`` over
  ``--connections`` threads, one session each: no database, no ledger;
* client: ``pipeline.deliver``, the project's delivery: each digest loaded from
  the database, its email built, sent over ``[smtp] connections`` sessions,
  and every outcome written to the ledger.

Prints one JSON object: seconds and messages per second of both, the client's
CPU seconds, and ``ratio`` (reference seconds over client seconds: 1.0 is the
client at plain smtplib's speed on prebuilt messages; the target is 0.85).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import smtplib
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from scale import set_up_day, start_sink  # noqa: E402

from digest import links, pipeline, render  # noqa: E402
from digest.config import Settings, SMTPSettings  # noqa: E402
from digest.models import Message  # noqa: E402
from digest.store import Store  # noqa: E402


async def _session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One SMTP session: a reply per command, DATA read to its final dot; nothing parsed or kept."""
    writer.write(b"220 sink ESMTP\r\n")
    while line := await reader.readline():
        verb = line[:4].upper()
        if verb == b"DATA":
            writer.write(b"354 go on\r\n")
            await reader.readuntil(b"\r\n.\r\n")
            writer.write(b"250 OK\r\n")
        elif verb == b"QUIT":
            writer.write(b"221 bye\r\n")
            break
        elif verb in (b"EHLO", b"HELO"):
            writer.write(b"250-sink\r\n250 8BITMIME\r\n")
        else:
            writer.write(b"250 OK\r\n")
    await writer.drain()
    writer.close()


def fast_sink(port: int, ready: Any) -> None:
    """An SMTP server that only accepts (run in a process of its own)."""

    async def serve() -> None:
        server = await asyncio.start_server(_session, "127.0.0.1", port, limit=2**24)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


def prebuilt(store: Store, settings: Settings, now: datetime) -> list[tuple[str, bytes]]:
    """Every due email of the ledger, built as the delivery builds it, held in memory."""
    rows = [d for d in store.ledger.due(now) if d.kind == "email"]
    digests = store.digests.get_many([d.digest for d in rows])
    keys = store.subscribers.link_keys(sorted({d.subscriber for d in rows}))
    found = []
    for d in rows:
        digest = digests[d.digest]
        signed = links.links_for(d.subscriber, keys.get(d.subscriber, ""), settings.delivery)
        message = render.eml(
            Message(digest.subject, digest.text, digest.html, digest.markdown),
            sender=settings.email.sender,
            to=d.target or "",
            message_id=d.message_id,
            sent=now,
            headers=render.list_unsubscribe(signed.unsubscribe if signed else None),
            body=digest.mime or None,
        )
        found.append((d.target or "", message))
    return found


def plain_smtplib(messages: list[tuple[str, bytes]], *, port: int, connections: int, sender: str) -> float:
    """Seconds for ``connections`` threads, one smtplib session each, to send their share of ``messages``."""

    def push(share: list[tuple[str, bytes]]) -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
            for recipient, message in share:
                smtp.sendmail(sender, [recipient], message)

    threads = [threading.Thread(target=push, args=(messages[n::connections],)) for n in range(connections)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=10000)
    parser.add_argument("--papers", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=SMTPSettings().connections)
    return parser.parse_args()


def main() -> None:
    args = arguments()
    rng = random.Random(7)
    now = datetime(2026, 11, 23, 23, 0, tzinfo=UTC)
    result: dict[str, Any] = {"subscribers": args.subscribers, "papers": args.papers, "connections": args.connections}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = set_up_day(root, args, rng)
        port = settings.smtp.port or 0
        sink = start_sink(fast_sink, port)
        with Store.open(settings.database.path) as store:
            for outcome in pipeline.ingest_files([root / "day.txt"], papers=store.papers, settings=settings, now=now):
                assert outcome.error is None, outcome.error
            pipeline.sync_subscribers(store.subscribers, settings.subscribers.dir, at=now)
            started = time.perf_counter()
            made = pipeline.make_digests(store, settings, now=now)
            result["make_s"] = round(time.perf_counter() - started, 2)
            messages = prebuilt(store, settings, now)
            result["messages"] = len(messages)
            result["mean_message_kb"] = round(sum(len(m) for _, m in messages) / len(messages) / 1024, 1)
            reference = plain_smtplib(messages, port=port, connections=args.connections, sender=settings.email.sender)
            del messages
            started, cpu = time.perf_counter(), time.process_time()
            report = pipeline.deliver(store, settings, clock=lambda: now)
            client = time.perf_counter() - started
            result["client_cpu_s"] = round(time.process_time() - cpu, 2)
            assert len(report.sent) == len(made.made), (len(report.sent), report.failed[:2], report.retries[:2])
        sink.terminate()
    result["reference_s"] = round(reference, 2)
    result["reference_per_s"] = round(result["messages"] / reference)
    result["client_s"] = round(client, 2)
    result["client_per_s"] = round(result["messages"] / client)
    result["client_cpu_us_per_message"] = round(result["client_cpu_s"] / result["messages"] * 1e6)
    result["ratio"] = round(reference / client, 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
