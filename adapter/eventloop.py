"""The event loop a server runs on: ``uvloop`` where it imports, else asyncio's own.

uvloop (libuv underneath) runs the same asyncio code with a cheaper loop, transport and TLS
path; nothing in the project depends on which loop runs it, so the choice is a flag
(``--event-loop``) of the adapter and of the model server, and the benchmarks' baselines run on
the same loop as what they are compared with.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

UVLOOP = "uvloop"
ASYNCIO = "asyncio"
CHOICES = (UVLOOP, ASYNCIO)
T = TypeVar("T")


def available(name: str) -> bool:
    """Whether the loop ``name`` can run here (uvloop is not on every platform)."""
    if name == ASYNCIO:
        return True
    return name == UVLOOP and importlib.util.find_spec("uvloop") is not None


def default() -> str:
    """uvloop where it imports, else asyncio."""
    return UVLOOP if available(UVLOOP) else ASYNCIO


def problem(name: str, flag: str = "--event-loop") -> str | None:
    """Why ``name`` cannot be used, as one line; None when it can."""
    if name not in CHOICES:
        return f"{flag} must be one of {', '.join(CHOICES)}, not {name!r}"
    if not available(name):
        return f"{flag} {name}: the {name} package is not installed"
    return None


def factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """A function that makes a new loop of kind ``name``."""
    if name == UVLOOP:
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop


def run(main: Coroutine[Any, Any, T], name: str) -> T:
    """``asyncio.run(main)`` on a loop of kind ``name``."""
    with asyncio.Runner(loop_factory=factory(name)) as runner:
        return runner.run(main)
