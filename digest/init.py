"""``digest init``: a new installation in a folder, from the example config and profile that ship with the package."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from digest.errors import UsageError

EXAMPLE_NAME = "example.toml.off"  # not a .toml yet: nobody is mailed until it is edited and renamed
EXAMPLE_PROFILE = """\
# One subscriber, switched off: only *.toml files in this folder are subscribers. Edit it
# (your address, zone and keywords), then rename it, e.g. to you.toml: the file name is the
# subscriber's name unless `name` says otherwise. `digest check subscribers/` checks every file.
email = "you@example.org"
timezone = "UTC"          # an IANA zone: Europe/Berlin, America/New_York, Asia/Tokyo ...
send_at = "07:30"         # local time
# frequency = "daily"     # daily, weekdays or weekly (then: day = "Monday")
max_items = 10

[keywords]                # what you want to read, with a weight; phrases are fine
"diffusion model" = 1.0
"image generation" = 1.0
"text-to-image" = 0.5
"""


def example_config() -> str:
    """The commented example configuration (inside the wheel, or a source checkout's)."""
    bundled = resources.files("digest") / "config.example.toml"
    if bundled.is_file():
        return bundled.read_text(encoding="utf-8")
    return (Path(__file__).resolve().parent.parent / "config.example.toml").read_text(encoding="utf-8")


def init(folder: Path) -> list[Path]:
    """Create ``digest.toml``, ``subscribers/example.toml.off`` (a profile to edit, not live until renamed),
    ``dumps/`` and ``var/`` in ``folder``; return what was made. Refuses, touching nothing, when ``folder``
    already holds a ``digest.toml``."""
    config = folder / "digest.toml"
    if config.exists():
        raise UsageError(f"{config}: already there; this folder is set up (digest status shows its state)")
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder}: not a folder; name a new or existing folder")
    made: list[Path] = []
    for sub in (folder, folder / "subscribers", folder / "dumps", folder / "var"):
        if not sub.exists():
            sub.mkdir(parents=True)
            made.append(sub)
    config.write_text(example_config(), encoding="utf-8")
    made.append(config)
    profile = folder / "subscribers" / EXAMPLE_NAME
    if not profile.exists():
        profile.write_text(EXAMPLE_PROFILE, encoding="utf-8")
        made.append(profile)
    return made
