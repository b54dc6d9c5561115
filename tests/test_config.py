"""Config: TOML file, DIGEST_* overrides, and errors that name the key and the fix."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from digest import config
from digest.cli import main
from digest.errors import ConfigError

from .conftest import ROOT


def test_the_example_config_loads_and_documents_every_key(workdir: Path) -> None:
    example = ROOT / "config.example.toml"
    loaded = config.load(example)
    assert loaded == config.Settings()  # the example shows the defaults
    text = example.read_text(encoding="utf-8")
    documented = tomllib.loads(text)
    for section in config.Settings.model_fields:
        assert section in documented, f"[{section}] is missing"
        body = text.split(f"[{section}]\n", 1)[1].split("\n[", 1)[0]
        for key, field in type(getattr(loaded, section)).model_fields.items():
            if field.annotation is SecretStr:  # secrets: only their environment variable is named
                assert f"DIGEST_{section.upper()}__{key.upper()}" in body, f"[{section}] {key}"
                continue
            # each key is set, or shown commented out when its default has no TOML form, under a comment
            match = re.search(rf"^(# )?{key} = ", body, re.M)
            assert match, f"[{section}] {key} is not documented"
            before = body[: match.start()].rstrip().rsplit("\n", 1)[-1]
            assert before.startswith("#"), f"[{section}] {key} has no comment"


def test_defaults_without_a_file(workdir: Path) -> None:
    settings = config.load()
    assert settings.database.path == Path("var/digest.sqlite3")
    assert settings.ingest.max_bytes == 50 * 1_048_576


def test_digest_toml_in_the_working_folder_is_read(workdir: Path) -> None:
    (workdir / "digest.toml").write_text('[database]\npath = "elsewhere.sqlite3"\n')
    assert config.load().database.path == Path("elsewhere.sqlite3")


def test_environment_overrides_the_file(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (workdir / "c.toml").write_text('[database]\npath = "file.sqlite3"\n[ingest]\nmax_size_mb = 5\n')
    monkeypatch.setenv("DIGEST_DATABASE__PATH", "env.sqlite3")
    settings = config.load(workdir / "c.toml")
    assert settings.database.path == Path("env.sqlite3")
    assert settings.ingest.max_size_mb == 5


def test_a_missing_config_path_is_an_error(workdir: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: config file not found; check the --config path"):
        config.load(workdir / "nope.toml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[database]\npaht = 'x'\n",
            r"c\.toml: key 'database\.paht': unknown key; did you mean 'database\.path'\? check",
        ),
        ("[smpt]\nhost = 'x'\n", r"c\.toml: key 'smpt': unknown key; did you mean 'smtp'\? check its spelling"),
        (
            "[smtp]\nzzzz = 1\n",
            r"c\.toml: key 'smtp\.zzzz': unknown key; check its spelling against config\.example\.toml",
        ),
        ("colour = 'blue'\n", r"c\.toml: key 'colour': unknown key"),
        (
            "[ingest]\nmax_size_mb = -1\n",
            r"c\.toml: key 'ingest\.max_size_mb': input should be greater than 0 \(got -1\)",
        ),
        ("[ingest]\nmax_size_mb = 'big'\n", r"key 'ingest\.max_size_mb': input should be a valid number"),
        ("[database\npath = 1\n", r"c\.toml: not valid TOML \(.*line 1.*\); fix the syntax"),
    ],
)
def test_bad_config_names_file_key_and_fix(workdir: Path, text: str, message: str) -> None:
    (workdir / "c.toml").write_text(text)
    with pytest.raises(ConfigError, match=message) as caught:
        config.load(workdir / "c.toml")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("section", "key"), [("smtp", "password"), ("delivery", "secret")])
def test_secrets_in_the_config_file_are_refused(workdir: Path, section: str, key: str) -> None:
    (workdir / "c.toml").write_text(f'[{section}]\n{key} = "hunter2"\n')
    with pytest.raises(ConfigError) as caught:
        config.load(workdir / "c.toml")
    assert str(caught.value) == (
        f"{workdir / 'c.toml'}: key '{section}.{key}': secrets do not belong in the config file; "
        f"remove it and set the environment variable DIGEST_{section.upper()}__{key.upper()}"
    )
    assert "hunter2" not in str(caught.value)


def test_a_bad_environment_variable_is_named(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_INGEST__MAX_SIZE_MB", "lots")
    with pytest.raises(ConfigError, match=r"^environment variable DIGEST_INGEST__MAX_SIZE_MB: input should be"):
        config.load()


@pytest.mark.parametrize(
    ("variable", "message"),
    [
        (
            "DIGEST_SMPT__HOST",
            "environment variable DIGEST_SMPT__HOST: names no setting; did you mean DIGEST_SMTP__HOST?",
        ),
        (
            "DIGEST_SMTP__HOTS",
            "environment variable DIGEST_SMTP__HOTS: names no setting; did you mean DIGEST_SMTP__HOST?",
        ),
        ("DIGEST_NOTHING_LIKE_IT", "environment variable DIGEST_NOTHING_LIKE_IT: names no setting; see config.example"),
    ],
)
def test_a_misspelled_environment_variable_is_not_ignored(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, variable: str, message: str
) -> None:
    monkeypatch.setenv(variable, "mail.example.org")
    with pytest.raises(ConfigError) as caught:
        config.load()
    assert str(caught.value).startswith(message) and "mail.example.org" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "check", "line"),
    [
        (
            "[render]\nworkers = 2\n",
            lambda s: s.make.workers == 2,
            "c.toml: [render] workers is now [make] workers; it still works, but rename it",
        ),
        (
            "[smtp]\ntimeout = 7\n",
            lambda s: s.smtp.timeout_s == 7,
            "c.toml: [smtp] timeout is now [smtp] timeout_s; it still works, but rename it",
        ),
        (
            "[schedule]\nmisfire_grace_hours = 2\n",
            lambda s: s.schedule.misfire_grace_s == 7200,
            "c.toml: [schedule] misfire_grace_hours is now [schedule] misfire_grace_s, in seconds "
            "(3600 times the old value); it still works, but rename it",
        ),
        (
            "[delivery]\nbackoff_seconds = 5\nbackoff_s = 9\n",
            lambda s: s.delivery.backoff_s == 9,  # the new name wins
            "c.toml: [delivery] backoff_seconds is now [delivery] backoff_s; it still works, but rename it",
        ),
    ],
)
def test_an_old_key_still_works_and_says_once_what_it_is_called_now(
    workdir: Path, text: str, check: Callable[[config.Settings], bool], line: str
) -> None:
    (workdir / "c.toml").write_text(text)
    said: list[str] = []
    settings = config.load(workdir / "c.toml", note=said.append)
    assert check(settings)
    assert said == [f"{workdir / line}"]


def test_an_old_environment_variable_still_works_and_names_the_new_one(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_SCHEDULE__POLL_SECONDS", "15")
    (workdir / "c.toml").write_text("[schedule]\npoll_s = 99\n")
    said: list[str] = []
    assert config.load(workdir / "c.toml", note=said.append).schedule.poll_s == 15  # the environment wins
    was, now = "DIGEST_SCHEDULE__POLL_SECONDS", "DIGEST_SCHEDULE__POLL_S"
    assert said == [f"environment variable {was} is now {now}; it still works, but rename it"]


def test_the_command_line_prints_the_renamed_line(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workdir / "digest.toml").write_text("[smtp]\ntimeout = 7\n")
    assert main(["status"]) == 0
    err = capsys.readouterr().err
    assert "digest: warning: digest.toml: [smtp] timeout is now [smtp] timeout_s" in err
