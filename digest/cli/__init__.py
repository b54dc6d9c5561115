"""The ``digest`` command. Catches ``DigestError`` once: one line on stderr, an exit code.

Exit codes: 0 success, 1 bad input (some file, profile or config could not be
used; the rest went on), 2 bad usage, 130 interrupted (SIGINT), 143 (SIGTERM).
``send`` and ``run`` catch the first signal themselves (``digest.interrupts``) and
return those codes after recording what was on the wire. ``--verbose`` adds the
traceback to an error.

Machine output (``--json``) is a stable interface: one JSON object per line.

Rooms: ``parser`` (every command and its help), ``papers``, ``people`` and
``digests`` (the commands), ``show`` (what they print).
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Sequence

from digest.cli.args import Command
from digest.cli.parser import build_parser
from digest.errors import DigestError

__all__ = ["build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code instead of exiting (tests call this)."""
    verbose = False
    try:
        args = build_parser().parse_args(argv)
        verbose = getattr(args, "verbose", False)
        from digest import config  # noqa: PLC0415 - after parsing: --help and --version need none of it

        settings = config.load(getattr(args, "config", None), note=_warn)
        _say_store_lines()
        run: Command = args.run
        return run(args, settings)
    except SystemExit as e:  # --help and --version
        return e.code if isinstance(e.code, int) else 0
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except BrokenPipeError:  # `digest parse x | head`: the reader left; stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except DigestError as e:
        if verbose:
            traceback.print_exc()
        _error(str(e))
        return e.exit_code


def _error(message: str) -> None:
    from digest.cli import show  # noqa: PLC0415 - rich, only when there is something to say

    show.error(message)


def _say_store_lines() -> None:
    """The store's one-off lines (an upgrade) on stderr, as the command's own: ``digest: upgraded …``."""
    store = logging.getLogger("digest.store")
    store.handlers = [_Said()]  # the daemon, once started, puts its event log here instead
    store.propagate = False


class _Said(logging.Handler):
    """A logged line on stderr as it is at the time (a test, or a progress bar, may have replaced it)."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"digest: {record.getMessage()}", file=sys.stderr, flush=True)


def _warn(message: str) -> None:
    from digest.cli import show  # noqa: PLC0415 - rich, only when there is something to say

    show.warn(message)
