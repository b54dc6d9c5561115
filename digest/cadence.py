"""When each subscriber's digests are due (pure: the moment is passed in, never read from a clock).

A profile fires at ``send_at`` local time on the days its ``frequency`` names
(every day, Monday to Friday, or one weekday). Each firing is an *edition*,
named by its local date. Daylight-saving changes are handled by construction:
each local day has exactly one firing; a time that does not exist that day
(02:30 when clocks spring forward) fires at the same instant one hour later on
the wall clock, and a time that happens twice (02:30 when clocks fall back)
fires the first time.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from digest.models import Profile

SEARCH_DAYS = 8  # every frequency fires at least once a week


def fires_on(profile: Profile, day: date) -> bool:
    """Whether the profile has an edition on this local day."""
    if profile.frequency == "daily":
        return True
    if profile.frequency == "weekdays":
        return day.weekday() < 5
    return day.weekday() == (profile.day or 0)


def fire_at(profile: Profile, day: date) -> datetime:
    """The instant of the day's edition, as an aware datetime in the profile's zone."""
    zone = ZoneInfo(profile.timezone)
    wall = datetime.combine(day, profile.send_at, tzinfo=zone)  # fold=0: the first of two, the offset before a gap
    return wall.astimezone(UTC).astimezone(zone)


def last_fire(profile: Profile, now: datetime) -> datetime | None:
    """The latest firing at or before ``now``."""
    today = now.astimezone(ZoneInfo(profile.timezone)).date()
    for back in range(SEARCH_DAYS + 1):
        day = today - timedelta(days=back)
        if fires_on(profile, day) and fire_at(profile, day) <= now:
            return fire_at(profile, day)
    return None


def previous_fire(profile: Profile, fire: datetime) -> datetime:
    """The firing before ``fire`` (a week back at most)."""
    found = last_fire(profile, fire - timedelta(seconds=1))
    return found if found is not None else fire - timedelta(days=7)


def next_fire(profile: Profile, now: datetime) -> datetime:
    """The first firing after ``now``."""
    today = now.astimezone(ZoneInfo(profile.timezone)).date()
    for ahead in range(SEARCH_DAYS + 1):
        day = today + timedelta(days=ahead)
        if fires_on(profile, day) and fire_at(profile, day) > now:
            return fire_at(profile, day)
    raise AssertionError(f"{profile.name}: no firing within {SEARCH_DAYS} days")  # frequencies fire weekly


def next_label(profile: Profile, now: datetime) -> str:
    """The first firing after ``now`` as a reader reads it: "Thu 4 Dec at 08:15 (America/New_York)"."""
    fire = next_fire(profile, now)
    return f"{fire:%a} {fire.day} {fire:%b} at {fire:%H:%M} ({profile.timezone})"
