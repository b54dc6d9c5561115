"""What the argument parser is made of: the command type, the parser that fails in one line, lazy
commands, and the types of arguments (a day, a count)."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, NoReturn

from digest.errors import UsageError

if TYPE_CHECKING:
    from digest.config import Settings

Command = Callable[[argparse.Namespace, "Settings"], int]
Adder = Callable[[str, Command, str, str], argparse.ArgumentParser]  # adds a command: name, run, summary, text

JSON_HELP = "one JSON object per line (a stable interface for scripts)"


class Parser(argparse.ArgumentParser):
    """argparse that raises ``UsageError`` (exit 2, one line) instead of printing usage."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a day as YYYY-MM-DD, got {text!r}") from None


def lazy(module: str, name: str) -> Command:
    """A command that imports its module (``digest.cli.MODULE``) when it runs."""

    def run(args: argparse.Namespace, settings: Settings) -> int:
        command: Command = getattr(importlib.import_module(f"digest.cli.{module}"), name)
        return command(args, settings)

    run.__qualname__ = run.__name__ = name
    return run


def whole(text: str) -> int:
    """0 or more."""
    return 0 if text.strip() == "0" else positive(text)


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value
