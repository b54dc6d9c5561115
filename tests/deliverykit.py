"""A small world for delivery tests: seeds ingested, N profiles written, settings pointing at local servers."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import SecretStr

from digest import pipeline
from digest.config import DatabaseSettings, DeliverySettings, Settings, SMTPSettings, SubscribersSettings
from digest.store import Store

from .conftest import DUMPS

START = datetime(2026, 11, 23, 7, 30, tzinfo=UTC)
# Where make_world puts each world's database when not told: "" for a SQLite file, or a new PostgreSQL database's
# URL (on_each_world sets it to the test cluster's ``create``).
new_database: Callable[[], str] = str


def digest_process(root: Path, *args: str, stdin: bool = False) -> subprocess.Popen[str]:
    """``digest ARGS`` as a child in ``root`` (its digest.toml), no DIGEST_* variables, output as text pipes
    (and input, with ``stdin``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    return subprocess.Popen(
        [sys.executable, "-m", "digest", *args],
        cwd=root,
        env=env,
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@dataclass
class Clock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class World:
    root: Path
    settings: Settings
    clock: Clock = field(default_factory=Clock)

    def write_config(self, extra: str = "") -> None:
        """``digest.toml`` in the world's folder, for the CLI: its database and subscribers folder, then ``extra``."""
        (self.root / "digest.toml").write_text(
            database_toml(self.settings) + f'[subscribers]\ndir = "{self.settings.subscribers.dir}"\n' + extra
        )

    def send(self, names: set[str] | None = None) -> pipeline.SendReport:
        with Store.open(self.settings.database.location) as store:
            return pipeline.run_daily(store, self.settings, clock=self.clock, names=names)


def profile_text(n: int, *, channels: str = "", extra: str = "") -> str:
    return (
        f'email = "user{n:03d}@example.org"\n'
        'empty_day = "notice"\n'
        f"{extra}\n"
        'keywords = ["learning", "feature", "diffusion model"]\n'
        f"{channels}\n"
    )


def make_world(
    root: Path,
    *,
    people: int,
    smtp_port: int | None = None,
    dumps: list[Path] | None = None,
    url: str | None = None,
    lease_s: float = 600.0,
    **delivery: object,
) -> World:
    """Ingest the example dumps (or ``dumps``) and write ``people`` profiles (user000..) into root/subscribers;
    the database is root/digest.sqlite3, or the PostgreSQL database at ``url``."""
    folder = root / "subscribers"
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(people):
        (folder / f"user{n:03d}.toml").write_text(profile_text(n))
    options: dict[str, object] = {
        "outbox_dir": root / "outbox",
        "backoff_s": 1.0,
        "backoff_max_s": 60.0,
        "allow_private_webhooks": True,  # the test servers listen on 127.0.0.1, over plain http
    }
    options.update(delivery)
    settings = Settings(
        database=DatabaseSettings(
            path=root / "digest.sqlite3", url=SecretStr(new_database() if url is None else url), lease_s=lease_s
        ),
        subscribers=SubscribersSettings(dir=folder),
        smtp=SMTPSettings(host="127.0.0.1", port=smtp_port, security="none", timeout_s=5)
        if smtp_port
        else SMTPSettings(),
        delivery=DeliverySettings(**options),
    )
    with Store.open(settings.database.location) as store:
        for _ in pipeline.ingest_files(
            dumps or [DUMPS], papers=store.papers, settings=settings, now=START - timedelta(hours=1)
        ):
            pass
    return World(root=root, settings=settings)


def database_toml(settings: Settings) -> str:
    """The ``[database]`` table of a config file naming the settings' database (its file, or its URL)."""
    database = settings.database
    url = database.url.get_secret_value()
    return f'[database]\npath = "{database.path}"\nlease_s = {database.lease_s}\n' + (f'url = "{url}"\n' if url else "")


def stored_text(world: World) -> str:
    """Everything the world's database holds, as text (to search it for what must never be kept)."""
    with Store.open(world.settings.database.location) as store:
        conn = store.db.conn
        if store.db.dialect == "sqlite":
            return "\n".join(store.db.sqlite.iterdump())  # type: ignore[attr-defined]
        tables = [row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        return "\n".join(repr(tuple(row)) for table in tables for row in conn.execute(f"SELECT * FROM {table}"))
