"""Profiles: the format the README describes, and a one-line error naming file and key for every bad one."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from digest import profiles
from digest.errors import ProfileError
from digest.models import Destination, Profile

from .conftest import ROOT

README_EXAMPLE = """
name = "alice"                      # unique; also the file's stem by default
email = "alice@example.org"
timezone = "Europe/Berlin"          # IANA
send_at = "07:30"                   # local time
frequency = "daily"                 # daily | weekdays | weekly
max_items = 10
min_score = 0.1                     # quiet days send less, or nothing (see empty_day)
empty_day = "skip"                  # skip | notice
trending = 3                        # also show the top N trending new papers

[keywords]                          # weight per term or phrase
"diffusion model" = 2.0
"video generation" = 1.0
quantization = 1.0

exclude = ["survey"]                # hard filter
seeds = ["Pangu-Weather: A 3D High-Resolution Model for Fast and Accurate Global Weather Forecast"]

[[channels]]                        # default: email if `email` is set, else the outbox
kind = "slack"
url_env = "ALICE_SLACK_WEBHOOK"     # secrets come from the environment
"""


def parse(text: str, source: str = "p.toml") -> Profile:
    return profiles.parse(text, source=source, default_name="p")


def test_the_design_example_parses_as_written() -> None:
    profile = parse(README_EXAMPLE, "alice.toml")
    assert profile.name == "alice"
    assert profile.keywords == (("diffusion model", 2.0), ("video generation", 1.0), ("quantization", 1.0))
    assert profile.exclude == ("survey",)
    assert len(profile.seeds) == 1
    assert (profile.timezone, profile.send_at, profile.frequency) == ("Europe/Berlin", time(7, 30), "daily")
    assert profile.channels == (Destination("slack", url_env="ALICE_SLACK_WEBHOOK"),)


def test_defaults_and_a_plain_keyword_list() -> None:
    profile = parse('keywords = ["LoRA", "diffusion model"]')
    assert profile.name == "p"
    assert profile.keywords == (("LoRA", 1.0), ("diffusion model", 1.0))
    assert (profile.timezone, profile.send_at, profile.max_items, profile.min_score) == ("UTC", time(7, 0), 10, 0.1)
    assert profile.delivery == (Destination("outbox"),)


def test_email_is_the_default_channel_when_there_is_an_address() -> None:
    profile = parse('email = "x@example.org"\nkeywords = ["a b"]')
    assert profile.delivery == (Destination("email", address="x@example.org"),)


def test_weekly_with_a_day_and_toml_time_literal() -> None:
    profile = parse('frequency = "weekly"\nday = "Fri"\nsend_at = 18:05:00\nkeywords = ["graphs"]')
    assert (profile.day, profile.send_at) == (4, time(18, 5))
    assert parse('frequency = "weekly"\nkeywords = ["graphs"]').day == 0


def test_seeds_alone_are_enough() -> None:
    assert parse('seeds = ["Some Paper Title"]').seeds == ("Some Paper Title",)


def test_the_example_subscribers_are_valid() -> None:
    found = sorted(
        p.name
        for p, _ in profiles.load_many(
            profiles.profile_files(ROOT / "examples" / "subscribers"), on_error=lambda path, e: pytest.fail(str(e))
        )
    )
    assert found == ["ada", "ben", "chen", "dora"]


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        (
            'max_items = "ten"\nkeywords = ["x"]',
            "max_items",
            "expected a whole number, not text (got 'ten'); write a number from 1 to 100",
        ),
        ("max_items = 0\nkeywords = ['x']", "max_items", "out of range 1..100"),
        ("min_score = true\nkeywords = ['x']", "min_score", "expected a number, not true/false"),
        ("trending = 2.5\nkeywords = ['x']", "trending", "expected a whole number"),
        ("colour = 'blue'\nkeywords = ['x']", "colour", "unknown key"),
        ("keyword = ['x']", "keyword", "unknown key; did you mean 'keywords'?"),
        (
            'timezone = "Europe/Berln"\nkeywords = ["x"]',
            "timezone",
            "not an IANA time zone (got 'Europe/Berln'); did you mean 'Europe/Berlin'?",
        ),
        ('timezone = "CEST+2"\nkeywords = ["x"]', "timezone", "not an IANA time zone"),
        (
            'send_at = "7.30am"\nkeywords = ["x"]',
            "send_at",
            "not a time of day (got '7.30am'); write \"HH:MM\" in 24-hour time",
        ),
        ('send_at = "24:00"\nkeywords = ["x"]', "send_at", "not a time of day"),
        ('frequency = "hourly"\nkeywords = ["x"]', "frequency", "use one of: daily, weekdays, weekly"),
        ('day = "monday"\nkeywords = ["x"]', "day", "only weekly digests have a day"),
        ('frequency = "weekly"\nday = "someday"\nkeywords = ["x"]', "day", "not a day of the week"),
        ('empty_day = "maybe"\nkeywords = ["x"]', "empty_day", "use one of: skip, notice"),
        ('email = "not-an-address"\nkeywords = ["x"]', "email", "An email address must have an @-sign"),
        ('name = "bad name!"\nkeywords = ["x"]', "name", "a space is not allowed in a name (use letters a-z"),
        ("", "keywords", "no keywords and no seeds"),
        ("[keywords]", "keywords", "no keywords and no seeds"),
        ('[keywords]\nfast = "very"', 'keywords."fast"', "expected a number, not text"),
        ("[keywords]\nfast = -1", 'keywords."fast"', "out of range"),
        ("[keywords]\nfast = 0", 'keywords."fast"', "out of range"),
        ("[keywords]\nLoRA = 1\nlora = 2", 'keywords."lora"', "the same term as 'LoRA'"),
        ('[keywords]\n"!!!" = 1', 'keywords."!!!"', "a keyword needs letters or digits"),
        ("keywords = 5", "keywords", "expected a table or a list, not a number"),
        ('keywords = ["x"]\nexclude = "survey"', "exclude", "expected a list of terms, not text"),
        ('keywords = ["x"]\nexclude = [""]', "exclude[0]", "not a valid value"),
        ('keywords = ["x"]\nseeds = [1]', "seeds[0]", "expected text, not a number"),
        (
            'keywords = ["x"]\n[[channels]]\nkind = "pigeon"',
            "channels[0].kind",
            "use one of: email, outbox, atom, slack",
        ),
        ('keywords = ["x"]\n[[channels]]\nkind = "slack"', "channels[0].url_env", "missing; a slack channel needs"),
        (
            'keywords = ["x"]\n[[channels]]\nkind = "discord"\nurl_env = "https://discord.com/api/webhooks/1/abc"',
            "channels[0].url_env",
            "this is a URL; url_env names the environment variable",
        ),
        ('keywords = ["x"]\n[[channels]]\nkind = "email"', "channels[0].kind", "an email channel needs an address"),
        ('keywords = ["x"]\n[[channels]]\nkind = "outbox"\nurl = "x"', "channels[0].url", "unknown key"),
    ],
)
def test_bad_profiles_name_file_key_and_fix(text: str, key: str, message: str) -> None:
    with pytest.raises(ProfileError) as caught:
        parse(text, "bob.toml")
    error = str(caught.value)
    assert error.startswith(f"bob.toml: key '{key}': ")
    assert message in error
    assert "\n" not in error
    assert "; " in error  # the fix follows the problem


def test_a_url_in_url_env_is_not_echoed() -> None:
    with pytest.raises(ProfileError) as caught:
        parse(
            'keywords = ["x"]\n[[channels]]\nkind = "slack"\nurl_env = "https://hooks.slack.com/services/T0/B0/CANARY-7f3a9"'
        )
    assert "CANARY-7f3a9" not in str(caught.value)
    assert "hooks.slack.com" not in str(caught.value)


def test_ten_thousand_keywords_are_refused() -> None:
    text = "[keywords]\n" + "\n".join(f'"term {n}" = 1' for n in range(10_000))
    with pytest.raises(ProfileError, match=r"^p\.toml: key 'keywords': 10000 terms; at most 200; keep the terms"):
        parse(text)


def test_not_toml_at_all() -> None:
    with pytest.raises(ProfileError, match=r"^p\.toml: not valid TOML \(.*line 1.*\); fix the syntax"):
        parse("keywords = [unclosed")


def test_two_profiles_with_one_name(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text('name = "same"\nkeywords = ["x"]')
    (tmp_path / "b.toml").write_text('name = "same"\nkeywords = ["y"]')
    errors: list[str] = []
    loaded = profiles.load_many(profiles.profile_files(tmp_path), on_error=lambda path, e: errors.append(str(e)))
    assert [p.source for p, _ in loaded] == [str(tmp_path / "a.toml")]
    assert errors == [
        f"{tmp_path / 'b.toml'}: key 'name': 'same' is already used by {tmp_path / 'a.toml'}; "
        "give each subscriber a unique name"
    ]


def test_unreadable_profile_files(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="no such profile file"):
        profiles.load(tmp_path / "missing.toml")
    (tmp_path / "latin.toml").write_bytes('keywords = ["caf\u00e9"]'.encode("latin-1"))
    with pytest.raises(ProfileError, match=r"latin\.toml: not UTF-8"):
        profiles.load(tmp_path / "latin.toml")


@pytest.mark.parametrize(
    "text",
    [
        'keywords = ["frequency", "email", "timezone"]\n',  # a list holds terms only
        '[keywords]\nfrequency = 1.0\n"trending" = 0.5\n',  # a top-level name with a weight is a real term
    ],
)
def test_words_that_are_also_key_names_are_keywords_where_they_can_only_be_terms(text: str) -> None:
    profile = parse(text, "t.toml")
    assert "frequency" in dict(profile.keywords) or "email" in dict(profile.keywords)


def test_a_setting_written_below_keywords_is_named_as_such() -> None:
    with pytest.raises(ProfileError) as caught:
        parse('[keywords]\nagents = 1.0\nmax_items = 5\nfrequency = "weekly"\n', "t.toml")
    assert [line.split(": key ")[1].split(":")[0] for line in caught.value.lines] == [
        "'keywords.max_items'",
        "'keywords.frequency'",
    ]


def test_every_error_of_a_file_is_listed_the_empty_keywords_too() -> None:
    with pytest.raises(ProfileError) as failed:
        parse('name = "Jane Doe"\nemail = "jane at example"\nkeywords = []\n')
    keys = [line.split("key '")[1].split("'")[0] for line in failed.value.lines]
    assert keys == ["email", "name", "keywords"]
    assert "no keywords and no seeds" in failed.value.lines[-1]


def test_a_bad_keyword_is_not_also_called_missing() -> None:
    with pytest.raises(ProfileError) as failed:
        parse("[keywords]\nquantization = -1\n")
    assert len(failed.value.lines) == 1 and "out of range" in failed.value.lines[0]
