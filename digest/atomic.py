"""Files written whole or not at all: the one way this project writes a file that others read.

The bytes go to a temporary name beside the target (``.NAME.PID.RANDOM.tmp``: hidden, and
``*.tmp``, so no folder scan takes it), are flushed to disk, then renamed into place, so a
reader (a folder scan, a feed reader, the next sync) sees the old file or the new one, never
half of one. ``replace=False`` links instead of renaming, which fails rather than replace a
file that appeared meanwhile.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def write(path: Path, data: bytes, *, replace: bool = True) -> bool:
    """Write ``path`` whole; False (nothing written) when ``replace`` is False and the name is taken."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with temporary.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(temporary, path)
            return True
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
        return True
    finally:
        temporary.unlink(missing_ok=True)
