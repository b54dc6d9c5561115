"""Settings: one typed object, from a TOML file overridden by ``DIGEST_*`` variables.

Precedence, highest first: environment (``DIGEST_DATABASE__PATH`` sets
``[database] path``), the TOML file, the built-in defaults. The file is
``--config PATH`` when given (it must exist), else ``./digest.toml`` when
present, else none. Settings are loaded once by the CLI and passed down.
``config.example.toml`` documents every key; a test loads it.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from digest.errors import ConfigError

DEFAULT_FILE = Path("digest.toml")
ENV_PREFIX = "DIGEST_"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSettings(_Section):
    """Where the SQLite state lives."""

    path: Path = Path("var/digest.sqlite3")


class IngestSettings(_Section):
    """Limits on dump files."""

    max_size_mb: float = Field(default=50.0, gt=0)

    @property
    def max_bytes(self) -> int:
        return int(self.max_size_mb * 1_048_576)


class SubscribersSettings(_Section):
    """Where subscriber profiles live."""

    dir: Path = Path("subscribers")


class RankSettings(_Section):
    """The ranker's knobs (see digest/rank.py for what each does)."""

    title_boost: float = Field(default=2.0, ge=0)
    partial_credit: float = Field(default=0.7, ge=0, le=1)
    seed_weight: float = Field(default=1.0, ge=0)
    seed_contrast: float = Field(default=0.5, ge=0, le=2)
    trending_weight: float = Field(default=0.05, ge=0, le=1)


class RenderSettings(_Section):
    """Where user templates override the packaged ones."""

    templates_dir: Path | None = None


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
        return (env_settings, init_settings)


def _env_name(loc: tuple[int | str, ...]) -> str:
    return ENV_PREFIX + "__".join(str(part) for part in loc).upper()


def _describe(error: ValidationError, *, origin: str) -> str:
    """One line for the first problem: where it is, what is wrong, how to fix it."""
    first = error.errors()[0]
    loc = tuple(first["loc"])
    key = ".".join(str(part) for part in loc)
    env = _env_name(loc)
    where = f"environment variable {env}" if env in os.environ else f"{origin}: key '{key}'"
    if first["type"] == "extra_forbidden":
        return f"{where}: unknown key; check its spelling against config.example.toml"
    value = first.get("input")
    shown = f" (got {value!r})" if not isinstance(value, dict) else ""
    return f"{where}: {first['msg'].lower()}{shown}; see config.example.toml for the expected form"


def load(path: Path | None = None) -> Settings:
    """Load settings from ``path`` (required to exist), ``./digest.toml`` or defaults."""
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
    try:
        return Settings(**data)
    except ValidationError as e:
        raise ConfigError(_describe(e, origin=origin)) from e
