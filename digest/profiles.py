"""Subscriber profiles: one TOML file each, checked key by key (``profile_checks``) into a ``Profile``.

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

import hashlib
import os
import re
import tomllib
from collections.abc import Callable
from datetime import time
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from digest import profile_checks as checks
from digest.errors import ProfileError
from digest.models import EMPTY_DAYS, FREQUENCIES, Profile

T = TypeVar("T")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_NAME_CHAR = re.compile(r"[A-Za-z0-9._-]")
MAX_NAME = 64
MAX_PROFILE_BYTES = 256 * 1024  # 200 keywords, 100 seeds and 200 excludes at their longest fit in 60 KB
# Folders of the outbox that are not a subscriber's: a subscriber of that name would write into them.
RESERVED_NAMES = frozenset({"feeds"})


@lru_cache(maxsize=200_000)
def parse(text: str, *, source: str, default_name: str | None = None) -> Profile:
    """Check a profile's TOML text and return the ``Profile``, or raise ``ProfileError``.

    Cached (a Profile is immutable): a run syncs the folder, then reads every
    stored profile back to make digests, and the daemon does that every day.
    """
    check = checks.Check(source)
    data = _table(text, source)
    problems = checks.Problems()
    problems.found += check.unknown(data, checks.TOP_KEYS)
    unknown = bool(problems.found)  # a misspelt key may be the keywords themselves: then that is the one error
    take = problems.take

    def given(key: str, default: T, get: Callable[..., T], *args: Any, **options: Any) -> T:
        """The checked value of an optional key, or its default when the file does not set it."""
        return take(default, get, key, data[key], *args, **options) if key in data else default

    email = given("email", None, check.address, fix='write an address like "alice@example.org"')
    has_channels = "channels" in data
    frequency = given("frequency", "daily", check.choice, FREQUENCIES)
    before = len(problems.found)
    keywords: tuple[tuple[str, float], ...] = take((), checks.keywords, check, data.get("keywords", {}))
    seeds: tuple[str, ...] = given("seeds", (), check.strings, limit=checks.MAX_SEEDS, what="paper titles")
    interests_ok = len(problems.found) == before  # both read: "none at all" is then a problem of its own
    profile = Profile(
        name=take("", _name, check, data, default_name),
        keywords=keywords,
        exclude=given("exclude", (), check.strings, limit=checks.MAX_EXCLUDE, what="terms"),
        seeds=seeds,
        email=email,
        timezone=take("UTC", checks.timezone, check, data["timezone"]) if "timezone" in data else "UTC",
        send_at=take(time(7), checks.send_at, check, data["send_at"]) if "send_at" in data else time(7),
        frequency=frequency,
        day=take(None, checks.day, check, data, frequency),
        max_items=given("max_items", 10, check.integer, 1, checks.MAX_ITEMS),
        min_score=given("min_score", 0.1, check.number, 0.0, 10.0),
        empty_day=given("empty_day", "skip", check.choice, EMPTY_DAYS),
        trending=given("trending", 3, check.integer, 0, checks.MAX_TRENDING),
        ask=given("ask", None, check.yes_no),
        channels=take((), checks.channels, check, data["channels"], email=email, data=data) if has_channels else (),
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


def _name(check: checks.Check, data: dict[str, Any], default_name: str | None) -> str:
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
        raise check.fail("name", f"expected text, not {checks.kind_of(value)}", 'write name = "…"', value)
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
