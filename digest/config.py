"""Settings: one typed object, from a TOML file overridden by ``DIGEST_*`` variables.

Precedence, highest first: environment (``DIGEST_DATABASE__PATH`` sets
``[database] path``), the TOML file, the built-in defaults. The file is
``--config PATH`` when given (it must exist), else ``./digest.toml`` when
present, else none. Settings are loaded once by the CLI and passed down.
``config.example.toml`` documents every key; a test loads it.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from digest.errors import ConfigError
from digest.renamed import ENV_PREFIX, RENAMED, WithoutRenamed, env_name, rename

DEFAULT_FILE = Path("digest.toml")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSettings(_Section):
    """Where the state lives: a SQLite file, or (``url``, which wins) ``sqlite:///PATH`` or
    ``postgresql://user@host:5432/dbname``; its password only from the environment, and never shown."""

    path: Path = Path("var/digest.sqlite3")
    url: SecretStr = SecretStr("")
    lease_s: float = Field(default=600.0, ge=5, le=86_400)  # a claim on work, on PostgreSQL (pipeline.claims)

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: SecretStr) -> SecretStr:
        value = url.get_secret_value()
        if value and not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError("must start with sqlite:/// or postgresql://, e.g. postgresql://digest@db:5432/digest")
        return url

    @property
    def location(self) -> Path | str:
        """The SQLite file (a ``Path``) or the PostgreSQL URL (a ``str``) the store opens."""
        value = self.url.get_secret_value()
        if value.startswith("sqlite:///"):
            return Path(value.removeprefix("sqlite:///"))
        return value or self.path

    @property
    def shown(self) -> str:
        """The database as a line may name it: the file, or the URL without its password."""
        return str(self.location) if isinstance(self.location, Path) else without_password(self.location)


def without_password(url: str) -> str:
    """A database URL as it may be printed (``postgresql://app@db:5432/digest``): no password, no options."""
    parts = urlsplit(url)
    netloc = parts.netloc if parts.password is None else parts.netloc.replace(f":{parts.password}@", "@", 1)
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class IngestSettings(_Section):
    """Where the daemon finds dumps, and limits on dump files."""

    dumps_dir: Path = Path("dumps")
    max_size_mb: float = Field(default=50.0, gt=0)
    max_papers: int = Field(default=5000, ge=1)  # a real page has a few hundred

    @property
    def max_bytes(self) -> int:
        return int(self.max_size_mb * 1_048_576)


class SubscribersSettings(_Section):
    """Where subscriber profiles live."""

    dir: Path = Path("subscribers")


class RankSettings(_Section):
    """The ranker's knobs (see digest/rank/ for what each does)."""

    title_boost: float = Field(default=2.0, ge=0)
    partial_credit: float = Field(default=0.7, ge=0, le=1)
    seed_weight: float = Field(default=1.0, ge=0)
    seed_contrast: float = Field(default=0.5, ge=0, le=2)
    trending_weight: float = Field(default=0.05, ge=0, le=1)
    archive_weight: float = Field(default=0.3, ge=0, le=10)
    liked_weight: float = Field(default=0.75, ge=0, le=10)
    disliked_weight: float = Field(default=0.5, ge=0, le=10)
    vote_half_life_days: float = Field(default=60.0, gt=0)
    ask_days: int = Field(default=30, ge=0, le=3650)  # a reader's first days with the daily question; 0: never


class RenderSettings(_Section):
    """Where user templates override the packaged ones."""

    templates_dir: Path | None = None


class MakeSettings(_Section):
    """How the due digests are made: in batches, by how many processes."""

    workers: int = Field(default=0, ge=0, le=64)  # processes ranking, rendering and freezing; 0: one per core
    batch_size: int = Field(default=1000, ge=1, le=100_000)  # subscribers ranked and stored together


class ScheduleSettings(_Section):
    """How the daemon (`digest run`) keeps time."""

    poll_s: float = Field(default=60.0, ge=1)  # how often dumps_dir is looked at
    misfire_grace_s: float = Field(default=6 * 3600.0, gt=0)  # an edition this late is still made


class SMTPSettings(_Section):
    """The mail server. With no host, email goes to the outbox folder instead."""

    host: str = ""
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str = ""
    password: SecretStr = SecretStr("")  # from DIGEST_SMTP__PASSWORD only
    verify: bool = True  # certificate checks
    timeout_s: float = Field(default=30.0, gt=0)
    connections: int = Field(default=8, ge=1, le=32)  # parallel SMTP connections for a batch
    # The envelope sender (Return-Path) of every digest: bounces+TOKEN@domain (VERP), TOKEN naming the delivery.
    bounce_address: str = Field(default="", pattern=r"^$|^[^@\s+]{1,64}@[^@\s]{1,253}$")


class EmailSettings(_Section):
    """What every email says about where it comes from."""

    sender: str = "paper-digest@localhost"
    sender_name: str = "paper-digest"
    reply_to: str = ""


class DeliverySettings(_Section):
    """Where files go, how hard to retry, and the one-click unsubscribe link."""

    outbox_dir: Path = Path("outbox")
    atom_entries: int = Field(default=20, ge=1, le=500)
    max_attempts: int = Field(default=8, ge=1, le=100)
    backoff_s: float = Field(default=60.0, gt=0)
    backoff_max_s: float = Field(default=6 * 3600.0, gt=0)
    http_connect_timeout_s: float = Field(default=5.0, gt=0)
    http_read_timeout_s: float = Field(default=15.0, gt=0)
    allow_private_webhooks: bool = False  # webhooks to private/loopback addresses and plain http
    base_url: str = ""  # e.g. https://digest.example.org, for one-click unsubscribe links
    secret: SecretStr = SecretStr("")  # signs unsubscribe links; from DIGEST_DELIVERY__SECRET only


class RetentionSettings(_Section):
    """How long what the database keeps is kept (applied daily by the daemon, and after `digest send`)."""

    bodies_days: int = Field(default=14, ge=1, le=3650)  # a delivered digest's text, HTML and MIME body
    history_days: int = Field(default=400, ge=30, le=36500)  # digests, their items and deliveries, sightings


class BouncesSettings(_Section):
    """Bounces and complaints: a mailbox read by `digest bounces` (and the daemon every poll), and the policy."""

    source: str = ""  # a Maildir folder, an mbox file, or "imap" (the server below); empty: the daemon reads none
    host: str = ""  # the IMAP server
    port: int = Field(default=993, ge=1, le=65535)
    security: Literal["ssl", "starttls", "none"] = "ssl"
    verify: bool = True  # certificate checks
    ca_file: Path | None = None  # a private CA's certificate to trust, besides the system's
    username: str = ""
    password: SecretStr = SecretStr("")  # from DIGEST_BOUNCES__PASSWORD only
    folder: str = "INBOX"
    done_folder: str = "Processed"  # where a message read goes (IMAP), so it is read once
    unknown_folder: str = "Unknown"  # where a message that is no bounce, complaint or auto-reply goes
    timeout_s: float = Field(default=30.0, gt=0, le=600)
    max_messages: int = Field(default=500, ge=1, le=100_000)  # read in one pass; the rest in the next
    max_message_kb: int = Field(default=2048, ge=16, le=65_536)  # a larger message is read only this far
    soft_limit: int = Field(default=3, ge=1, le=100)  # soft bounces (one per delivery) that suspend...
    soft_days: int = Field(default=14, ge=1, le=365)  # ...within this many days
    sendgrid_key: SecretStr = SecretStr("")  # SendGrid's verification key (base64); DIGEST_BOUNCES__SENDGRID_KEY
    mailgun_key: SecretStr = SecretStr("")  # Mailgun's webhook signing key; DIGEST_BOUNCES__MAILGUN_KEY
    postmark_username: str = ""  # the basic-auth user Postmark's webhook URL carries
    postmark_password: SecretStr = SecretStr("")  # DIGEST_BOUNCES__POSTMARK_PASSWORD


class WebSettings(_Section):
    """``digest serve``: the reader's side (unsubscribe, feedback, preferences, sign-up, feeds)."""

    host: str = "127.0.0.1"  # behind a TLS reverse proxy; [delivery] base_url is its public address
    port: int = Field(default=8080, ge=1, le=65535)
    signup: bool = False  # the public sign-up page (double opt-in)
    max_body_kb: int = Field(default=64, ge=1, le=1024)
    signups_per_hour: int = Field(default=5, ge=1, le=1000)  # per client address and per email address
    # The proxies whose X-Forwarded-For names the client (addresses or CIDR ranges); none: the peer is the client.
    trusted_proxies: list[str] = Field(default_factory=list, max_length=64)


class FetchSettings(_Section):
    """Fetching Hugging Face's Daily Papers list (``digest fetch``, and the daemon when enabled)."""

    base_url: str = Field(default="https://huggingface.co", pattern=r"^https?://[^\s/]+(:\d+)?/?$")
    enabled: bool = False  # the daemon fetches each day at ``at`` (UTC)
    at: str = Field(default="06:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    backfill_days: int = Field(default=7, ge=0, le=60)  # on start, the days missed
    max_attempts: int = Field(default=5, ge=1, le=20)  # per request, for 429 and 5xx
    timeout_s: float = Field(default=30.0, gt=0, le=600)  # one whole answer; connecting gets a third of it
    max_size_mb: float = Field(default=10.0, gt=0, le=500)  # one response
    max_day_mb: float = Field(default=20.0, gt=0, le=2000)  # all the pages of one day together
    max_pages: int = Field(default=10, ge=1, le=1000)  # a day's list is under 100 papers: one page
    min_interval_s: float = Field(default=1.0, ge=0, le=60)  # between two requests
    run_deadline_s: float = Field(default=600.0, gt=0, le=86_400)  # one whole fetch pass of the daemon


class Settings(BaseSettings):
    """Everything configurable, with its default."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    database: DatabaseSettings = DatabaseSettings()
    ingest: IngestSettings = IngestSettings()
    subscribers: SubscribersSettings = SubscribersSettings()
    rank: RankSettings = RankSettings()
    render: RenderSettings = RenderSettings()
    make: MakeSettings = MakeSettings()
    smtp: SMTPSettings = SMTPSettings()
    email: EmailSettings = EmailSettings()
    delivery: DeliverySettings = DeliverySettings()
    schedule: ScheduleSettings = ScheduleSettings()
    retention: RetentionSettings = RetentionSettings()
    bounces: BouncesSettings = BouncesSettings()
    web: WebSettings = WebSettings()
    fetch: FetchSettings = FetchSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML file's values arrive as init arguments; the environment wins over them.
        return (WithoutRenamed(settings_cls, env_settings), init_settings)


def _describe(error: ValidationError, *, origin: str) -> str:
    """One line for the first problem: where it is, what is wrong, how to fix it."""
    first = error.errors()[0]
    loc = tuple(first["loc"])
    key = ".".join(str(part) for part in loc)
    env = env_name(loc)
    where = f"environment variable {env}" if env in os.environ else f"{origin}: key '{key}'"
    if first["type"] == "extra_forbidden":
        guess = _closest(loc)
        hint = f"did you mean '{guess}'? " if guess else ""
        return f"{where}: unknown key; {hint}check its spelling against config.example.toml"
    value = first.get("input")
    shown = f" (got {value!r})" if not isinstance(value, dict) else ""
    return f"{where}: {first['msg'].lower()}{shown}; see config.example.toml for the expected form"


def _known(loc: tuple[int | str, ...]) -> list[str]:
    """The keys allowed where ``loc`` points: sections at the top, a section's keys inside it."""
    if len(loc) == 1:
        return list(Settings.model_fields)
    section = Settings.model_fields.get(str(loc[0]))
    model = section.annotation if section is not None else None
    return list(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else []


def _closest(loc: tuple[int | str, ...]) -> str | None:
    """The known key (``section.key``) nearest to a misspelled one, if any is near."""
    found = difflib.get_close_matches(str(loc[-1]), _known(loc), n=1, cutoff=0.6)
    return ".".join([*(str(part) for part in loc[:-1]), found[0]]) if found else None


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """One line per ``DIGEST_*`` variable that names no setting (pydantic-settings would ignore it silently)."""
    lines = []
    for name in sorted(v for v in environ if v.upper().startswith(ENV_PREFIX)):
        parts = tuple(name[len(ENV_PREFIX) :].lower().split("__"))
        if len(parts) == 2 and parts[0] in Settings.model_fields and parts[1] in _known(parts):
            continue
        if ".".join(parts) in RENAMED:
            continue  # still read; `load` says what it is called now
        if len(parts) == 2 and parts[0] in Settings.model_fields:
            guess = _closest(parts)
        else:
            section = _closest(parts[:1])
            guess = ".".join([section, *parts[1:2]]) if section else None
        hint = f"did you mean {env_name(tuple(guess.split('.')))}? " if guess else ""
        lines.append(f"environment variable {name}: names no setting; {hint}see config.example.toml")
    return lines


def _no_password_in(data: dict[str, Any], *, origin: str) -> None:
    """A database URL in the file carries no password (it belongs in the environment)."""
    table = data.get("database")
    url = table.get("url") if isinstance(table, dict) else None
    if isinstance(url, str) and urlsplit(url).password is not None:
        raise ConfigError(
            f"{origin}: key 'database.url': a password does not belong in the config file; remove it from the "
            "URL and set PGPASSWORD, or give the whole URL in DIGEST_DATABASE__URL"
        )


def load(path: Path | None = None, *, note: Callable[[str], None] = lambda line: None) -> Settings:
    """Load settings from ``path`` (required to exist), ``./digest.toml`` or defaults.

    ``note`` hears one line for each renamed key still in use (``RENAMED``).
    """
    if path is not None and not path.is_file():
        raise ConfigError(f"{path}: config file not found; check the --config path")
    if path is None and DEFAULT_FILE.is_file():
        path = DEFAULT_FILE
    data: dict[str, Any] = {}
    origin = "built-in defaults"
    if path is not None:
        origin = str(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: not valid TOML ({e}); fix the syntax at that line") from e
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: cannot read the config file ({e}); check it is UTF-8 text") from e
    for section, key, variable in (
        ("smtp", "password", "DIGEST_SMTP__PASSWORD"),
        ("delivery", "secret", "DIGEST_DELIVERY__SECRET"),
        ("bounces", "password", "DIGEST_BOUNCES__PASSWORD"),
        ("bounces", "sendgrid_key", "DIGEST_BOUNCES__SENDGRID_KEY"),
        ("bounces", "mailgun_key", "DIGEST_BOUNCES__MAILGUN_KEY"),
        ("bounces", "postmark_password", "DIGEST_BOUNCES__POSTMARK_PASSWORD"),
    ):
        if isinstance(data.get(section), dict) and key in data[section]:
            raise ConfigError(
                f"{origin}: key '{section}.{key}': secrets do not belong in the config file; "
                f"remove it and set the environment variable {variable}"
            )
    _no_password_in(data, origin=origin)
    rename(data, os.environ, origin=origin, note=note)
    if unknown := unknown_variables(os.environ):
        raise ConfigError(unknown[0] + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""))
    try:
        return Settings(**data)
    except ValidationError as e:
        raise ConfigError(_describe(e, origin=origin)) from e
