"""Settings' names: the environment variable that sets a key, and the keys that were renamed or moved.

An old name still works, from the file or the environment; ``rename`` moves
its value to the new name (in the new unit) and says once what it is called
now. ``WithoutRenamed`` keeps pydantic-settings from reading an old variable
on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

ENV_PREFIX = "DIGEST_"

# Keys that were renamed or moved: (the key now, the factor that turns an old value into the new unit).
# An old config still works, and the run says once what the key is called now.
RENAMED: dict[str, tuple[str, float]] = {
    "render.workers": ("make.workers", 1),
    "render.batch_size": ("make.batch_size", 1),
    "schedule.poll_seconds": ("schedule.poll_s", 1),
    "schedule.misfire_grace_hours": ("schedule.misfire_grace_s", 3600),
    "smtp.timeout": ("smtp.timeout_s", 1),
    "delivery.backoff_seconds": ("delivery.backoff_s", 1),
    "delivery.backoff_max_seconds": ("delivery.backoff_max_s", 1),
    "delivery.http_connect_timeout": ("delivery.http_connect_timeout_s", 1),
    "delivery.http_read_timeout": ("delivery.http_read_timeout_s", 1),
}


def env_name(loc: tuple[int | str, ...]) -> str:
    return ENV_PREFIX + "__".join(str(part) for part in loc).upper()


class WithoutRenamed(PydanticBaseSettingsSource):
    """The environment's values, but for old names (``RENAMED``): ``load`` hands those on under the new."""

    def __init__(self, settings_cls: type[BaseSettings], inner: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self._inner = inner

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._inner.get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        values = self._inner()
        for old in RENAMED:
            section, name = old.split(".")
            table = values.get(section)
            if isinstance(table, dict):
                table.pop(name, None)
        return values


def _key_text(key: str) -> str:
    section, name = key.split(".")
    return f"[{section}] {name}"


def _renamed_note(old: str, new: str, factor: float, *, origin: str | None) -> str:
    """One line for an old name still in use: in the file (``origin``), or (None) in the environment."""
    unit = f", in seconds ({factor:g} times the old value)" if factor != 1 else ""
    if origin is None:
        was, now = env_name(tuple(old.split("."))), env_name(tuple(new.split(".")))
        return f"environment variable {was} is now {now}{unit}; it still works, but rename it"
    return f"{origin}: {_key_text(old)} is now {_key_text(new)}{unit}; it still works, but rename it"


def rename(data: dict[str, Any], environ: Mapping[str, str], *, origin: str, note: Callable[[str], None]) -> None:
    """Old keys (``RENAMED``) in the file or the environment, moved to their new names in ``data``.

    A value set under the new name too keeps the new one; an old environment variable still wins
    over the file, as every variable does.
    """
    for old, (new, factor) in RENAMED.items():
        (section, name), (new_section, new_name) = old.split("."), new.split(".")
        table = data.get(section)
        variable = env_name((section, name))
        found: list[tuple[object, str | None]] = []
        if isinstance(table, dict) and name in table:
            found.append((table.pop(name), origin))
        if variable in environ and env_name((new_section, new_name)) not in environ:
            found.append((environ[variable], None))
        for value, where in found:  # the environment's last: it wins
            target = data.setdefault(new_section, {})
            if isinstance(target, dict) and (where is None or new_name not in target):
                target[new_name] = _scaled(value, factor)
            note(_renamed_note(old, new, factor, origin=where))


def _scaled(value: object, factor: float) -> object:
    """An old value in the new unit (a value that is no number is left for validation to name)."""
    if factor == 1:
        return value
    try:
        return float(str(value)) * factor
    except ValueError:
        return value
