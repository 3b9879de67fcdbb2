"""Command-line value types and a parser that reports a bad flag on one line.

Role: what ``inference-adapter simulate``, ``model-server`` and ``model-server loadgen`` share
to read numbers from flags (argparse ``type=`` callables raising ``ArgumentTypeError``, whose
message argparse prints after the flag's name), and ``OneLineParser``, whose errors are one
line without the usage dump (scripts and people both read them).

Pure and standard-library only, like ``adapter.durations`` (which reads durations the same way).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import NoReturn

from adapter import durations

__all__ = [
    "OneLineParser",
    "count",
    "integer_at_least",
    "non_negative_number",
    "positive_duration",
    "positive_int",
    "positive_number",
]


class OneLineParser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage dump): ``prog: error: message``, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def integer_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type for integers of at least ``minimum``."""

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {wanted}, not {text!r}")
        return value

    wanted = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"

    return convert


positive_int = integer_at_least(1)
"""An integer >= 1: ``--max-concurrency 4``."""
count = integer_at_least(0)
"""An integer >= 0: ``--max-queue 0``."""


def positive_number(text: str) -> float:
    """A finite number > 0: ``--rate 200``."""
    value = _finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text!r}")
    return value


def non_negative_number(text: str) -> float:
    """A finite number >= 0: ``--batch-growth 0.5``."""
    value = _finite(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, not {text!r}")
    return value


def positive_duration(text: str) -> float:
    """A duration longer than 0, in seconds: ``--duration 1h``."""
    value = durations.duration_arg(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be longer than 0, not {text!r}")
    return value


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text!r}")
    return value
