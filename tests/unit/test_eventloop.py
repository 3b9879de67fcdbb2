"""``adapter.eventloop``: the ``--event-loop`` choice of the adapter and the model server."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from adapter import eventloop
from adapter.__main__ import build_parser, server_config
from model_server.__main__ import build_parser as model_server_parser


async def running_loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


@pytest.mark.parametrize(
    ("name", "kind"), [("uvloop", uvloop.Loop), ("asyncio", asyncio.BaseEventLoop)]
)
def test_run_uses_the_loop_asked_for(name: str, kind: type) -> None:
    assert isinstance(eventloop.run(running_loop(), name), kind)


def test_uvloop_is_the_default_where_it_imports() -> None:
    assert eventloop.default() == "uvloop"
    args = build_parser().parse_args(["serve"])
    assert server_config(args, {}).event_loop == "uvloop"
    assert model_server_parser({}).parse_args([]).event_loop == "uvloop"
    assert model_server_parser({"MODEL_SERVER_EVENT_LOOP": "asyncio"}).parse_args(
        []
    ).event_loop == ("asyncio")


def test_an_unknown_or_missing_loop_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    args = build_parser().parse_args(["serve", "--event-loop", "asyncio"])
    assert server_config(args, {}).validate() == []
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--event-loop", "trio"])
    monkeypatch.setattr(eventloop.importlib.util, "find_spec", lambda name: None)
    assert eventloop.default() == "asyncio"
    assert eventloop.problem("uvloop") == "--event-loop uvloop: the uvloop package is not installed"
    assert eventloop.problem("trio") == "--event-loop must be one of uvloop, asyncio, not 'trio'"
