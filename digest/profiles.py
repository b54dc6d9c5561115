"""Subscriber profiles: one TOML file each, checked key by key into a ``Profile``.

``parse`` is pure (TOML text in, ``Profile`` out); ``load`` reads one file,
``load_many`` a list of them (``profile_files`` lists a folder's). Every error is one line naming the file, the
key, the bad value and the fix, and a file's errors are all reported at once (one ``ProfileError``
holding a line each). Unknown keys are errors, so typos are caught; a top-level key written below
``[keywords]`` or ``[[channels]]`` (where TOML files it) is named as such, with the fix.

For the profile format see the README's "Subscribers" and ``examples/subscribers/``. One
leniency: TOML puts every key after ``[keywords]`` into that table, so a list
named ``exclude`` or ``seeds`` found there (as people write it, after the
table) is taken as the top-level key it was meant to be.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import os
import re
import tomllib
import unicodedata
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from datetime import time
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, TypeVar

from digest import addresses
from digest.errors import ProfileError
from digest.models import CHANNEL_KINDS, CHAT_KINDS, EMPTY_DAYS, FREQUENCIES, WEEKDAYS, Channel, Profile

T = TypeVar("T")

MAX_KEYWORDS = 200
MAX_TERM_LENGTH = 100
MAX_EXCLUDE = 200
MAX_SEEDS = 100
MAX_ITEMS = 100
MAX_TRENDING = 20
MAX_WEIGHT = 100.0

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_NAME_CHAR = re.compile(r"[A-Za-z0-9._-]")
MAX_NAME = 64
MAX_PROFILE_BYTES = 256 * 1024  # 200 keywords, 100 seeds and 200 excludes at their longest fit in 60 KB
# Folders of the outbox that are not a subscriber's: a subscriber of that name would write into them.
RESERVED_NAMES = frozenset({"feeds"})
# Zone abbreviations people write, and the IANA zone meant most often.
_ABBREVIATIONS = {
    "PST": "America/Los_Angeles",
    "PDT": "America/Los_Angeles",
    "MST": "America/Denver",
    "MDT": "America/Denver",
    "CST": "America/Chicago",
    "CDT": "America/Chicago",
    "EST": "America/New_York",
    "EDT": "America/New_York",
    "BST": "Europe/London",
    "CET": "Europe/Berlin",
    "CEST": "Europe/Berlin",
    "IST": "Asia/Kolkata",
    "JST": "Asia/Tokyo",
    "AEST": "Australia/Sydney",
    "AEDT": "Australia/Sydney",
}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_TOP_KEYS = (
    "name",
    "email",
    "timezone",
    "send_at",
    "frequency",
    "day",
    "max_items",
    "min_score",
    "empty_day",
    "trending",
    "keywords",
    "exclude",
    "seeds",
    "channels",
)
_CHANNEL_KEYS = ("kind", "url_env", "address")


@cache
def zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def term_key(term: str) -> str:
    """How two keywords are compared for sameness: NFKC, casefolded, spaces folded."""
    return " ".join(unicodedata.normalize("NFKC", term).casefold().split())


@dataclass
class _Check:
    """Turns one bad value into a ProfileError naming the file, the key and the fix."""

    source: str

    def fail(self, key: str, problem: str, fix: str, value: object = None, *, show: bool = True) -> ProfileError:
        got = f" (got {_show(value)})" if show else ""
        return ProfileError(f"{self.source}: key '{key}': {problem}{got}; {fix}")

    def text(self, key: str, value: object, *, pattern: re.Pattern[str] | None = None, fix: str) -> str:
        if not isinstance(value, str):
            raise self.fail(key, f"expected text, not {_kind(value)}", fix, value)
        value = value.strip()
        if not value or (pattern is not None and not pattern.match(value)):
            raise self.fail(key, "not a valid value", fix, value)
        return value

    def integer(self, key: str, value: object, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(
                key, f"expected a whole number, not {_kind(value)}", f"write a number from {low} to {high}", value
            )
        if not low <= value <= high:
            raise self.fail(key, f"out of range {low}..{high}", f"write a number from {low} to {high}", value)
        return value

    def number(self, key: str, value: object, low: float, high: float, *, above: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, f"expected a number, not {_kind(value)}", f"write a number like {high / 10:g}", value)
        if not math.isfinite(value):
            raise self.fail(key, "not a finite number", f"write a number like {high / 10:g}", value)
        bad = value <= low if above else value < low
        if bad or value > high:
            bound = f"above {low:g}" if above else f"from {low:g}"
            raise self.fail(key, "out of range", f"write a number {bound} up to {high:g}", value)
        return float(value)

    def address(self, key: str, value: object, *, fix: str) -> str:
        """An email address as it will be sent to (``addresses.normalise``), or the reason it cannot be."""
        text = self.text(key, value, fix=fix)
        try:
            return addresses.normalise(text)
        except addresses.AddressError as e:
            raise self.fail(key, str(e), fix, value) from None

    def choice(self, key: str, value: object, options: tuple[str, ...]) -> str:
        if not isinstance(value, str) or value.strip().lower() not in options:
            raise self.fail(key, "not one of the choices", "use one of: " + ", ".join(options), value)
        return value.strip().lower()

    def strings(self, key: str, value: object, *, limit: int, what: str) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise self.fail(key, f"expected a list of {what}, not {_kind(value)}", f'write {key} = ["…", "…"]', value)
        if len(value) > limit:
            raise self.fail(key, f"{len(value)} {what}; at most {limit}", "keep the ones that matter", show=False)
        out = []
        for index, item in enumerate(value):
            item_key = f"{key}[{index}]"
            out.append(self.text(item_key, item, fix=f"each entry of {key} is a non-empty text"))
        return tuple(out)

    def unknown(self, table: dict[str, Any], allowed: tuple[str, ...], prefix: str = "") -> list[ProfileError]:
        """One error per key not in ``allowed``, each with the closest allowed key."""
        found = []
        for key in table:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"did you mean '{close[0]}'?" if close else "allowed keys: " + ", ".join(allowed)
                found.append(self.fail(f"{prefix}{key}", "unknown key", hint, show=False))
        return found

    def scope(self, key: str, table: str) -> ProfileError:
        """A top-level key TOML filed under a table because it was written below that table's header."""
        return self.fail(
            key,
            f"'{key.rsplit('.', 1)[-1]}' is written below {table}, so TOML puts it in that table",
            f"move it above the {table} line",
            show=False,
        )


class _Problems:
    """The errors found in one file so far; each check runs even when an earlier one failed."""

    def __init__(self) -> None:
        self.found: list[ProfileError] = []

    def take(self, fallback: T, get: Callable[..., T], *args: Any, **options: Any) -> T:
        """``get(*args, **options)``, or ``fallback`` with its error noted."""
        try:
            return get(*args, **options)
        except ProfileError as e:
            self.found.append(e)
            return fallback

    def raise_any(self) -> None:
        if self.found:
            raise ProfileError.combine(self.found)


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"


def _kind(value: object) -> str:
    return {
        str: "text",
        int: "a number",
        float: "a number",
        bool: "true/false",
        list: "a list",
        dict: "a table",
        time: "a time",
    }.get(type(value), type(value).__name__)


@lru_cache(maxsize=200_000)
def parse(text: str, *, source: str, default_name: str | None = None) -> Profile:
    """Check a profile's TOML text and return the ``Profile``, or raise ``ProfileError``.

    Cached (a Profile is immutable): a run syncs the folder, then reads every
    stored profile back to make digests, and the daemon does that every day.
    """
    check = _Check(source)
    data = _table(text, source)
    problems = _Problems()
    problems.found += check.unknown(data, _TOP_KEYS)
    unknown = bool(problems.found)  # a misspelt key may be the keywords themselves: then that is the one error
    take = problems.take

    def given(key: str, default: T, get: Callable[..., T], *args: Any, **options: Any) -> T:
        """The checked value of an optional key, or its default when the file does not set it."""
        return take(default, get, key, data[key], *args, **options) if key in data else default

    email = given("email", None, check.address, fix='write an address like "alice@example.org"')
    frequency = given("frequency", "daily", check.choice, FREQUENCIES)
    before = len(problems.found)
    keywords: tuple[tuple[str, float], ...] = take((), _keywords, check, data.get("keywords", {}))
    seeds: tuple[str, ...] = given("seeds", (), check.strings, limit=MAX_SEEDS, what="paper titles")
    interests_ok = len(problems.found) == before  # both read: "none at all" is then a problem of its own
    profile = Profile(
        name=take("", _name, check, data, default_name),
        keywords=keywords,
        exclude=given("exclude", (), check.strings, limit=MAX_EXCLUDE, what="terms"),
        seeds=seeds,
        email=email,
        timezone=take("UTC", _timezone, check, data["timezone"]) if "timezone" in data else "UTC",
        send_at=take(time(7), _send_at, check, data["send_at"]) if "send_at" in data else time(7),
        frequency=frequency,
        day=take(None, _day, check, data, frequency),
        max_items=given("max_items", 10, check.integer, 1, MAX_ITEMS),
        min_score=given("min_score", 0.1, check.number, 0.0, 10.0),
        empty_day=given("empty_day", "skip", check.choice, EMPTY_DAYS),
        trending=given("trending", 3, check.integer, 0, MAX_TRENDING),
        channels=take((), _channels, check, data["channels"], email=email, data=data) if "channels" in data else (),
        source=source,
    )
    if not keywords and not seeds and interests_ok and not unknown:
        problems.found.append(
            check.fail(
                "keywords",
                "no keywords and no seeds, so nothing can be ranked",
                'add a [keywords] table ("diffusion model" = 1.0) or seeds = ["a title you liked"]',
                show=False,
            )
        )
    problems.raise_any()
    return profile


def _name(check: _Check, data: dict[str, Any], default_name: str | None) -> str:
    """The ``name`` key, else the file's stem; an error says which character or rule is wrong, and where."""
    if "name" in data:
        value = data["name"]
        where, fix = "key 'name'", "change name"
    elif default_name is not None:
        value = default_name
        where, fix = f"the file name '{default_name}' (the subscriber's name)", 'rename the file or add name = "…"'
    else:
        raise check.fail("name", "missing", 'add name = "…" (letters, digits, . _ -)', show=False)
    if not isinstance(value, str):
        raise check.fail("name", f"expected text, not {_kind(value)}", 'write name = "…"', value)
    problem = name_problem(value.strip())
    if problem is not None:
        raise ProfileError(f"{check.source}: {where}: {problem}; {fix}")
    return value.strip()


def name_problem(name: str) -> str | None:
    """What is wrong with a subscriber name, in words, or None."""
    if _NAME.match(name):
        if name.casefold() in RESERVED_NAMES:
            return f"'{name}' is the outbox's own folder (its Atom feeds); pick another name"
        return None
    if not name:
        return "empty"
    bad = next((ch for ch in name if not _NAME_CHAR.fullmatch(ch)), None)
    if bad is not None:
        shown = "a space" if bad == " " else f"'{bad}'"
        return f"{shown} is not allowed in a name (use letters a-z and A-Z, digits, '.', '_' or '-')"
    if not name[0].isalnum():
        return f"a name starts with a letter or digit, not '{name[0]}'"
    return f"{len(name)} characters; at most {MAX_NAME}"  # the only rule left that _NAME checks


def _table(text: str, source: str) -> dict[str, Any]:
    """The TOML as a table, with ``exclude`` and ``seeds`` written under ``[keywords]`` moved to the top."""
    if len(text) > MAX_PROFILE_BYTES:
        raise ProfileError(_too_large(source))
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ProfileError(f"{source}: not valid TOML ({e}); fix the syntax at that line") from e
    except RecursionError as e:
        raise ProfileError(f"{source}: arrays or tables nested too deeply to read; a profile needs no nesting") from e
    except ValueError as e:  # a number Python will not convert (over 4,300 digits), and the like
        raise ProfileError(f"{source}: not valid TOML ({e}); fix the value") from e
    keywords_table = data.get("keywords")
    if isinstance(keywords_table, dict):
        for hoisted in ("exclude", "seeds"):
            if isinstance(keywords_table.get(hoisted), list) and hoisted not in data:
                data[hoisted] = keywords_table.pop(hoisted)
    return data


def _too_large(source: str) -> str:
    limit = MAX_PROFILE_BYTES // 1024
    return f"{source}: over the {limit} KB a profile may have; a profile is a few keywords and settings"


def _timezone(check: _Check, value: object) -> str:
    timezone = check.text("timezone", value, fix='use an IANA zone name like "Europe/Berlin"')
    if timezone in zones():
        return timezone
    if timezone.upper() in _ABBREVIATIONS:
        meant = _ABBREVIATIONS[timezone.upper()]
        raise check.fail(
            "timezone",
            "an abbreviation, not a zone (it does not follow daylight saving)",
            f'write the place\'s zone, like "{meant}"',
            timezone,
        )
    by_case = {zone.casefold(): zone for zone in zones()}
    close = [by_case[timezone.casefold()]] if timezone.casefold() in by_case else []
    close = close or difflib.get_close_matches(timezone, sorted(zones()), n=1)
    fix = f"did you mean '{close[0]}'?" if close else 'use an IANA zone name like "Europe/Berlin"'
    raise check.fail("timezone", "not an IANA time zone", fix, timezone)


def _day(check: _Check, data: dict[str, Any], frequency: str) -> int | None:
    """The weekday of a weekly digest (Monday unless given); only weekly digests may name one."""
    if "day" in data:
        if frequency != "weekly":
            raise check.fail(
                "day", "only weekly digests have a day", 'set frequency = "weekly" or remove day', show=False
            )
        return WEEKDAYS.index(_weekday(check, data["day"]))
    return 0 if frequency == "weekly" else None


def _send_at(check: _Check, value: object) -> time:
    if isinstance(value, time):
        return value.replace(second=0, microsecond=0)
    match = CLOCK.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise check.fail("send_at", "not a time of day", 'write "HH:MM" in 24-hour time, like "07:30"', value)
    return time(int(match[1]), int(match[2]))


def _weekday(check: _Check, value: object) -> str:
    if isinstance(value, str):
        word = value.strip().lower()
        for day in WEEKDAYS:
            if len(word) >= 3 and day.startswith(word):
                return day
    raise check.fail("day", "not a day of the week", 'write a day like "monday" or "mon"', value)


def _keywords(check: _Check, value: object) -> tuple[tuple[str, float], ...]:
    """The weighted terms; every bad entry is reported, not only the first."""
    table = isinstance(value, dict)  # a [keywords] table, where TOML also files keys written below it
    if isinstance(value, list):
        value = dict.fromkeys(check.strings("keywords", value, limit=MAX_KEYWORDS, what="terms"), 1.0)
    if not isinstance(value, dict):
        raise check.fail(
            "keywords", f"expected a table or a list, not {_kind(value)}", 'write [keywords] then "term" = 1.0', value
        )
    if len(value) > MAX_KEYWORDS:
        raise check.fail(
            "keywords",
            f"{len(value)} terms; at most {MAX_KEYWORDS}",
            "keep the terms that matter (a good profile has 3 to 30)",
            show=False,
        )
    problems = _Problems()
    seen: dict[str, str] = {}
    terms = []
    for term, weight in value.items():
        try:
            terms.append(_term(check, term, weight, seen, table=table))
        except ProfileError as e:
            problems.found.append(e)
    problems.raise_any()
    return tuple(terms)


# Top-level keys that are never meant as a keyword, whatever their value ("frequency" = 1.0 is a real term).
_NOT_TERMS = frozenset({"max_items", "min_score", "send_at", "empty_day"})


def _term(check: _Check, term: str, weight: object, seen: dict[str, str], *, table: bool) -> tuple[str, float]:
    """One keyword and its weight, checked; the error names the key as written (``keywords."term"``)."""
    is_number = isinstance(weight, int | float) and not isinstance(weight, bool)
    if table and (term in _NOT_TERMS or (term in _TOP_KEYS and not is_number)):
        raise check.scope(f"keywords.{term}", "[keywords]")
    clean = " ".join(term.split())
    if not clean or not any(ch.isalnum() for ch in clean):
        raise check.fail(
            _term_key(term), "a keyword needs letters or digits", "remove it or write a real term", show=False
        )
    if len(clean) > MAX_TERM_LENGTH:
        raise check.fail(
            _term_key(term), f"longer than {MAX_TERM_LENGTH} characters", "use a short term or phrase", show=False
        )
    if isinstance(weight, list):
        raise check.fail(_term_key(term), "a list where a weight belongs", "give the term a number like 1.0", weight)
    folded = term_key(clean)
    if folded in seen:
        raise check.fail(_term_key(term), f"the same term as '{seen[folded]}'", "keep one of them", show=False)
    seen[folded] = clean
    if is_number and 0.0 < weight <= MAX_WEIGHT:  # type: ignore[operator]
        return clean, float(weight)  # type: ignore[arg-type]
    return clean, check.number(_term_key(term), weight, 0.0, MAX_WEIGHT, above=True)


def _term_key(term: str) -> str:
    return f"keywords.{_show(term)}" if len(term) > MAX_TERM_LENGTH else f'keywords."{term}"'


def _channels(check: _Check, value: object, *, email: str | None, data: dict[str, Any]) -> tuple[Channel, ...]:
    """The ``[[channels]]`` tables; every bad one is reported. ``data`` is the whole file (was email given?)."""
    if not isinstance(value, list):
        raise check.fail("channels", "expected [[channels]] tables", 'write [[channels]] then kind = "…"', value)
    problems = _Problems()
    found = [problems.take(None, _channel, check, i, table, email=email, data=data) for i, table in enumerate(value)]
    problems.raise_any()
    return tuple(channel for channel in found if channel is not None)


def _channel(check: _Check, index: int, table: object, *, email: str | None, data: dict[str, Any]) -> Channel:
    prefix = f"channels[{index}]."
    if not isinstance(table, dict):
        raise check.fail(f"channels[{index}]", "expected a table", 'write [[channels]] then kind = "…"', table)
    problems = _Problems()
    problems.found += [check.scope(prefix + key, "[[channels]]") for key in table if key in _TOP_KEYS]
    problems.found += check.unknown({k: v for k, v in table.items() if k not in _TOP_KEYS}, _CHANNEL_KEYS, prefix)
    problems.raise_any()
    kind = check.choice(prefix + "kind", table.get("kind"), CHANNEL_KINDS)
    url_env = _url_env(check, prefix, kind, table)
    address = None
    if kind == "email":
        if "address" in table:
            address = check.address(prefix + "address", table["address"], fix='write "bob@example.org"')
        elif email is None and "email" not in data:  # a bad email key has its own error already
            raise check.fail(
                prefix + "kind", "an email channel needs an address", 'set email = "…" at the top', show=False
            )
    elif "address" in table:
        raise check.fail(prefix + "address", f"a {kind} channel takes no address", "remove address", show=False)
    return Channel(kind=kind, url_env=url_env, address=address)


def _url_env(check: _Check, prefix: str, kind: str, table: dict[str, Any]) -> str | None:
    """The webhook variable's name: required for chat kinds, refused for the others, never a URL itself."""
    if kind not in CHAT_KINDS:
        if "url_env" in table:
            raise check.fail(prefix + "url_env", f"a {kind} channel takes no URL", "remove url_env", show=False)
        return None
    if "url_env" not in table:
        raise check.fail(
            prefix + "url_env",
            f"missing; a {kind} channel needs the name of the environment variable holding its URL",
            'add url_env = "TEAM_SLACK_WEBHOOK" and set that variable',
            show=False,
        )
    raw = table["url_env"]
    if isinstance(raw, str) and "://" in raw:
        raise check.fail(
            prefix + "url_env",
            "this is a URL; url_env names the environment variable that holds it",
            "keep secrets out of profile files: export the URL as a variable and name it here",
            show=False,
        )
    return check.text(prefix + "url_env", raw, pattern=_ENV_NAME, fix="use a variable name like TEAM_SLACK_WEBHOOK")


def fingerprint(text: str) -> str:
    """The hash stored with a profile's text, to tell a changed file from an unchanged one."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load(path: Path, *, text: str | None = None) -> tuple[Profile, str]:
    """Read and check one profile file; the name defaults to the file's stem. ``text``: the file as read already."""
    text = read(path) if text is None else text
    return parse(text, source=str(path), default_name=path.stem), text


def read(path: Path) -> str:
    """A profile file's text, or a ``ProfileError`` saying why it cannot be read (a file past
    ``MAX_PROFILE_BYTES`` is not read whole: what is read says it is too large)."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_PROFILE_BYTES + 1)
        if len(data) > MAX_PROFILE_BYTES:
            raise ProfileError(_too_large(str(path)))
        return data.decode("utf-8")
    except FileNotFoundError as e:
        raise ProfileError(f"{path}: no such profile file; check the path") from e
    except UnicodeDecodeError as e:
        raise ProfileError(f"{path}: not UTF-8 (byte offset {e.start}); re-save it as UTF-8") from e
    except OSError as e:
        raise ProfileError(f"{path}: cannot read ({e.strerror}); check the file") from e


def load_many(
    paths: list[Path],
    *,
    on_error: Callable[[Path, ProfileError], None],
    taken: dict[str, str] | None = None,
    texts: dict[Path, str] | None = None,
) -> list[tuple[Profile, str]]:
    """Load each file; a bad one, or a second profile with a taken name, goes to ``on_error``.

    ``taken``: names already owned, and by which file. ``texts``: files already read.
    """
    good: list[tuple[Profile, str]] = []
    owners: dict[str, str] = dict(taken or {})
    for path in paths:
        try:
            profile, text = load(path, text=(texts or {}).get(path))
        except ProfileError as e:
            on_error(path, e)
            continue
        if profile.name in owners:
            on_error(
                path,
                ProfileError(
                    f"{path}: key 'name': '{profile.name}' is already used by {owners[profile.name]}; "
                    "give each subscriber a unique name"
                ),
            )
            continue
        owners[profile.name] = str(path)
        good.append((profile, text))
    return good


def profile_files(folder: Path) -> list[Path]:
    """The ``*.toml`` files of a subscribers folder, in name order, hidden ones skipped."""
    return [Path(path) for path, _, _ in profile_entries(folder)]


def profile_entries(folder: Path) -> list[tuple[str, int, int]]:
    """``profile_files`` as ``str(path)``, with each file's size and mtime (ns), in name order.

    Strings, not ``Path``s: a folder of 100,000 profiles is listed in a tenth of the time.
    """
    return paths_of(folder, sorted(scan(folder)))


def scan(folder: Path) -> list[tuple[str, int, int]]:
    """The folder's profile files as (file name, size, mtime ns), in the directory's own order: one scan."""
    found = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.endswith(".toml") and not entry.name.startswith(".") and entry.is_file():
                stat = entry.stat()
                found.append((entry.name, stat.st_size, stat.st_mtime_ns))
    return found


def paths_of(folder: Path, entries: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """Scanned entries with each name made ``str(folder / name)``."""
    prefix = str(folder)
    if prefix == ".":  # as str(Path(".") / name) spells it
        return entries
    return [(f"{prefix}{os.sep}{name}", size, mtime) for name, size, mtime in entries]
