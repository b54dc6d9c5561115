"""``digest serve`` and ``digest send`` on one database at once: nothing lost, nothing locked, nothing twice."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from digest import links, pipeline
from digest.store import Store

from .deliverykit import make_world
from .servers import smtp_server
from .webkit import web_server

SECRET = "s3cret-for-hmac-0123456789"
SENDING = 2000  # digests `digest send` delivers meanwhile
READERS = 250  # paused subscribers who unsubscribe; as many votes come from the others


@pytest.mark.slow
def test_500_posts_while_send_delivers_2000_digests(tmp_path: Path) -> None:
    with smtp_server() as smtp:
        world = make_world(tmp_path, people=SENDING, smtp_port=smtp.port, base_url="https://x.example", secret=SECRET)
        folder = world.settings.subscribers.dir
        for n in range(READERS):
            (folder / f"reader{n:03d}.toml").write_text('keywords = ["learning"]\n')
        with Store.open(world.settings.database.path) as store:
            pipeline.sync_subscribers(store.subscribers, folder, at=world.clock())
            for n in range(READERS):
                store.subscribers.set_status(f"reader{n:03d}", "paused", at=world.clock())
            keys = store.subscribers.link_keys([s.name for s in store.subscribers.all()])
            paper = store.papers.archive()[0].id

        def signed(purpose: str, name: str, data: str = "") -> str:
            return links.sign(SECRET, purpose, name=name, key=keys[name], data=data)

        one_click = {"List-Unsubscribe": "One-Click"}
        posts = [(f"/u/{signed(links.UNSUBSCRIBE, f'reader{n:03d}')}", one_click) for n in range(READERS)]
        vote = f"+2026-11-23|{paper}"
        posts += [(f"/f/{signed(links.FEEDBACK, f'user{n:03d}', vote)}", {}) for n in range(READERS)]
        world.write_config(
            f'[smtp]\nhost = "127.0.0.1"\nport = {smtp.port}\nsecurity = "none"\ntimeout_s = 30\n'
            f'[delivery]\noutbox_dir = "{tmp_path / "outbox"}"\n'
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
        with web_server(world.settings, clock=world.clock) as base:
            sender = subprocess.Popen(
                [sys.executable, "-m", "digest", "send"],
                cwd=tmp_path,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            deadline = time.monotonic() + 120
            while not smtp.box.messages:  # the votes and unsubscribes go in while digests go out
                assert sender.poll() is None, sender.communicate()[1].decode()
                assert time.monotonic() < deadline, "no digest reached the SMTP server in 120 s"
                time.sleep(0.01)
            with httpx.Client(base_url=base, timeout=60) as http, ThreadPoolExecutor(8) as pool:
                codes = list(pool.map(lambda post: http.post(post[0], data=post[1]).status_code, posts))
            out, err = sender.communicate(timeout=300)
        assert codes == [200] * (2 * READERS)
        assert sender.returncode == 0, err.decode()
        assert b"locked" not in out + err
        ids = [m["Message-ID"] for m in smtp.box.messages]
        assert len(ids) == SENDING and len(set(ids)) == SENDING  # every digest once
    with Store.open(world.settings.database.path) as store:
        gone = [s for s in store.subscribers.all(include_unsubscribed=True) if s.status == "unsubscribed"]
        assert sorted(s.name for s in gone) == [f"reader{n:03d}" for n in range(READERS)]
        assert all(len(store.feedback.votes(f"user{n:03d}")) == 1 for n in range(READERS))
        assert store.ledger.deliveries(states=("pending", "sending", "retry", "failed")) == []
