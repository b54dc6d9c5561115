"""The checks of one profile's values: each bad value becomes one line naming the file, the key and the fix.

``Check`` turns a bad value into a ``ProfileError``; ``Problems`` gathers a file's errors so
every one is reported at once. The keys with rules of their own (time zone, day, send time,
keywords, channels) have a function each here; ``profiles.parse`` calls them. Pure.
"""

from __future__ import annotations

import difflib
import math
import re
import unicodedata
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from datetime import time
from functools import cache
from typing import Any, TypeVar

from digest import addresses
from digest.errors import ProfileError
from digest.models import CHANNEL_KINDS, CHAT_KINDS, WEEKDAYS, Destination

T = TypeVar("T")

MAX_KEYWORDS = 200
MAX_TERM_LENGTH = 100
MAX_EXCLUDE = 200
MAX_SEEDS = 100
MAX_ITEMS = 100
MAX_TRENDING = 20
MAX_WEIGHT = 100.0

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
TOP_KEYS = (
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
    "ask",
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
class Check:
    """Turns one bad value into a ProfileError naming the file, the key and the fix."""

    source: str

    def fail(self, key: str, problem: str, fix: str, value: object = None, *, show: bool = True) -> ProfileError:
        got = f" (got {shown(value)})" if show else ""
        return ProfileError(f"{self.source}: key '{key}': {problem}{got}; {fix}")

    def text(self, key: str, value: object, *, pattern: re.Pattern[str] | None = None, fix: str) -> str:
        if not isinstance(value, str):
            raise self.fail(key, f"expected text, not {kind_of(value)}", fix, value)
        value = value.strip()
        if not value or (pattern is not None and not pattern.match(value)):
            raise self.fail(key, "not a valid value", fix, value)
        return value

    def integer(self, key: str, value: object, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(
                key, f"expected a whole number, not {kind_of(value)}", f"write a number from {low} to {high}", value
            )
        if not low <= value <= high:
            raise self.fail(key, f"out of range {low}..{high}", f"write a number from {low} to {high}", value)
        return value

    def number(self, key: str, value: object, low: float, high: float, *, above: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(
                key, f"expected a number, not {kind_of(value)}", f"write a number like {high / 10:g}", value
            )
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

    def yes_no(self, key: str, value: object) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, f"expected true or false, not {kind_of(value)}", f"write {key} = true or false", value)
        return value

    def choice(self, key: str, value: object, options: tuple[str, ...]) -> str:
        if not isinstance(value, str) or value.strip().lower() not in options:
            raise self.fail(key, "not one of the choices", "use one of: " + ", ".join(options), value)
        return value.strip().lower()

    def strings(self, key: str, value: object, *, limit: int, what: str) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise self.fail(key, f"expected a list of {what}, not {kind_of(value)}", f'write {key} = ["…", "…"]', value)
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


class Problems:
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


def shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"


def kind_of(value: object) -> str:
    return {
        str: "text",
        int: "a number",
        float: "a number",
        bool: "true/false",
        list: "a list",
        dict: "a table",
        time: "a time",
    }.get(type(value), type(value).__name__)


def timezone(check: Check, value: object) -> str:
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


def day(check: Check, data: dict[str, Any], frequency: str) -> int | None:
    """The weekday of a weekly digest (Monday unless given); only weekly digests may name one."""
    if "day" in data:
        if frequency != "weekly":
            raise check.fail(
                "day", "only weekly digests have a day", 'set frequency = "weekly" or remove day', show=False
            )
        return WEEKDAYS.index(_weekday(check, data["day"]))
    return 0 if frequency == "weekly" else None


def send_at(check: Check, value: object) -> time:
    if isinstance(value, time):
        return value.replace(second=0, microsecond=0)
    match = CLOCK.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise check.fail("send_at", "not a time of day", 'write "HH:MM" in 24-hour time, like "07:30"', value)
    return time(int(match[1]), int(match[2]))


def _weekday(check: Check, value: object) -> str:
    if isinstance(value, str):
        word = value.strip().lower()
        for day in WEEKDAYS:
            if len(word) >= 3 and day.startswith(word):
                return day
    raise check.fail("day", "not a day of the week", 'write a day like "monday" or "mon"', value)


def keywords(check: Check, value: object) -> tuple[tuple[str, float], ...]:
    """The weighted terms; every bad entry is reported, not only the first."""
    table = isinstance(value, dict)  # a [keywords] table, where TOML also files keys written below it
    if isinstance(value, list):
        value = dict.fromkeys(check.strings("keywords", value, limit=MAX_KEYWORDS, what="terms"), 1.0)
    if not isinstance(value, dict):
        raise check.fail(
            "keywords", f"expected a table or a list, not {kind_of(value)}", 'write [keywords] then "term" = 1.0', value
        )
    if len(value) > MAX_KEYWORDS:
        raise check.fail(
            "keywords",
            f"{len(value)} terms; at most {MAX_KEYWORDS}",
            "keep the terms that matter (a good profile has 3 to 30)",
            show=False,
        )
    problems = Problems()
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


def _term(check: Check, term: str, weight: object, seen: dict[str, str], *, table: bool) -> tuple[str, float]:
    """One keyword and its weight, checked; the error names the key as written (``keywords."term"``)."""
    is_number = isinstance(weight, int | float) and not isinstance(weight, bool)
    if table and (term in _NOT_TERMS or (term in TOP_KEYS and not is_number)):
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
    return f"keywords.{shown(term)}" if len(term) > MAX_TERM_LENGTH else f'keywords."{term}"'


def channels(check: Check, value: object, *, email: str | None, data: dict[str, Any]) -> tuple[Destination, ...]:
    """The ``[[channels]]`` tables; every bad one is reported. ``data`` is the whole file (was email given?)."""
    if not isinstance(value, list):
        raise check.fail("channels", "expected [[channels]] tables", 'write [[channels]] then kind = "…"', value)
    problems = Problems()
    found = [problems.take(None, _channel, check, i, table, email=email, data=data) for i, table in enumerate(value)]
    problems.raise_any()
    return tuple(channel for channel in found if channel is not None)


def _channel(check: Check, index: int, table: object, *, email: str | None, data: dict[str, Any]) -> Destination:
    prefix = f"channels[{index}]."
    if not isinstance(table, dict):
        raise check.fail(f"channels[{index}]", "expected a table", 'write [[channels]] then kind = "…"', table)
    problems = Problems()
    problems.found += [check.scope(prefix + key, "[[channels]]") for key in table if key in TOP_KEYS]
    problems.found += check.unknown({k: v for k, v in table.items() if k not in TOP_KEYS}, _CHANNEL_KEYS, prefix)
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
    return Destination(kind=kind, url_env=url_env, address=address)


def _url_env(check: Check, prefix: str, kind: str, table: dict[str, Any]) -> str | None:
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
