"""``adapter.logs``: the cached-time formatters write what ``logging`` and ``datetime`` would."""

from __future__ import annotations

import datetime
import io
import json
import logging
import random
import sys
from collections.abc import Callable, Iterator

import pytest

from adapter import logs


def make_record(
    created: float, level: int = logging.INFO, msg: str = "hello %s"
) -> logging.LogRecord:
    record = logging.LogRecord("adapter.test", level, __file__, 1, msg, ("world",), None)
    record.created = created
    record.msecs = int((created - int(created)) * 1000) + 0.0
    return record


def timestamps() -> list[float]:
    rng = random.Random(7)
    base = 1_800_000_000.0
    edges = [
        base,
        base + 0.5,
        base + 0.9999994,  # rounds down to .999999
        base + 0.9999996,  # rounds up to the next whole second
        base + 0.0000004,  # rounds to .000000: no fraction printed
        base + 0.0000005,
        base + 0.0000015,
        1_000_000_000.123456,
    ]
    return edges + [base + rng.uniform(0, 200_000) for _ in range(3000)]


def test_text_time_is_what_logging_formatter_writes() -> None:
    ours, reference = logs.TextFormatter(), logging.Formatter(logs.TEXT_FORMAT)
    for created in sorted(timestamps()):  # sorted: the cached second is reused and replaced
        record = make_record(created)
        assert ours.format(record) == reference.format(record), created


def test_text_time_with_an_explicit_date_format_is_not_cached() -> None:
    record = make_record(1_800_000_000.25)
    assert logs.TextFormatter().formatTime(record, "%Y") == logging.Formatter().formatTime(
        record, "%Y"
    )


def test_json_time_is_what_datetime_isoformat_writes() -> None:
    formatter = logs.JsonFormatter()
    for created in timestamps():
        expected = datetime.datetime.fromtimestamp(created, datetime.UTC).isoformat()
        assert formatter.iso_time(created) == expected, created


def test_json_line_has_the_fields_and_the_exception() -> None:
    formatter = logs.JsonFormatter()
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord(
            "adapter", logging.ERROR, __file__, 1, "failed %d", (3,), sys.exc_info()
        )
    record.status = 500
    line = json.loads(formatter.format(record))
    assert line["level"] == "error"
    assert line["logger"] == "adapter"
    assert line["message"] == "failed 3"
    assert line["status"] == 500
    assert "method" not in line
    assert "ValueError: boom" in line["exception"]


@pytest.fixture
def captured() -> Iterator[list[logging.LogRecord]]:
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("adapter.test.access")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)


def test_access_record(captured: list[logging.LogRecord]) -> None:
    logger = logging.getLogger("adapter.test.access")
    logs.access(logger, "GET", "/apis?x=1", 200, 0.0123456, "alice", "10.0.0.7")
    logs.access(logger, "POST", "/push/v1", 401, 0.0005, None, None)
    first, second = captured
    assert first.getMessage() == "GET /apis?x=1 200 12.3ms alice"
    assert (first.method, first.path, first.status, first.user, first.remote) == (
        "GET",
        "/apis?x=1",
        200,
        "alice",
        "10.0.0.7",
    )
    assert first.duration_ms == 12.346
    assert first.levelno == logging.INFO
    assert first.name == "adapter.test.access"
    assert second.getMessage() == "POST /push/v1 401 0.5ms -"
    assert second.user is None


def test_access_respects_the_level(captured: list[logging.LogRecord]) -> None:
    logger = logging.getLogger("adapter.test.access")
    logger.setLevel(logging.WARNING)
    logs.access(logger, "GET", "/", 200, 0.001, None, None)
    assert captured == []


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_configure_logging_writes_one_line_per_record(log_format: str) -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logs.configure_logging(log_format, stream=stream)
        assert not logging.logThreads
        assert not logging.logProcesses
        assert not logging.logMultiprocessing
        logs.access(logging.getLogger("adapter.access"), "GET", "/x", 200, 0.001, None, "::1")
        logging.getLogger("adapter").warning("careful")
    finally:
        root.handlers[:], root.level = saved
        logging.logThreads = logging.logProcesses = logging.logMultiprocessing = True
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    if log_format == "json":
        access, warning = map(json.loads, lines)
        assert access["logger"] == "adapter.access"
        assert access["path"] == "/x"
        assert access["remote"] == "::1"
        assert warning["level"] == "warning"
        assert warning["message"] == "careful"
    else:
        assert lines[0].endswith(" INFO adapter.access GET /x 200 1.0ms -")
        assert lines[1].endswith(" WARNING adapter careful")


class FlushCountingStream(io.StringIO):
    """A stream that tells how much of it was flushed (what a reader of the file would see)
    and how many writes it took."""

    def __init__(self) -> None:
        super().__init__()
        self.flushed = ""
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)

    def flush(self) -> None:
        super().flush()
        self.flushed = self.getvalue()


@pytest.fixture
def line_handler() -> Iterator[tuple[logs.LineHandler, FlushCountingStream, logging.Logger]]:
    stream = FlushCountingStream()
    handler = logs.LineHandler(stream)
    handler.setFormatter(logs.TextFormatter())
    logger = logging.getLogger("adapter.test.lines")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        yield handler, stream, logger
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
        logger.setLevel(logging.NOTSET)


def test_access_lines_wait_for_flush_pending(line_handler, monkeypatch) -> None:
    handler, stream, logger = line_handler
    clock = [1000.0]
    monkeypatch.setattr(logs.time, "monotonic", lambda: clock[0])
    handler.flush()
    for path in ("/a", "/b"):
        logs.access(logger, "GET", path, 200, 0.001, None, None)
    assert (stream.getvalue(), stream.writes) == ("", 0), "an access line cost a write of its own"
    handler.flush_pending()
    assert stream.flushed.count("\n") == 2
    assert stream.writes == 1, "the waiting lines were not written in one piece"
    handler.flush_pending()  # nothing waits: no flush
    logs.access(logger, "GET", "/c", 200, 0.001, None, None)
    assert stream.flushed.count("\n") == 2
    clock[0] += logs.FLUSH_INTERVAL_SECONDS
    logs.access(logger, "GET", "/d", 200, 0.001, None, None)
    assert stream.flushed.count("\n") == 4, "a line after the interval did not flush the batch"


def test_other_records_flush_at_once_with_the_waiting_lines(line_handler, monkeypatch) -> None:
    handler, stream, logger = line_handler
    monkeypatch.setattr(logs.time, "monotonic", lambda: 5.0)
    handler.flush()
    logs.access(logger, "GET", "/a", 200, 0.001, None, None)
    logger.info("certificate reloaded")
    assert stream.flushed.splitlines()[-1].endswith("INFO adapter.test.lines certificate reloaded")
    assert stream.flushed.count("\n") == 2


def test_flush_pending_reaches_the_configured_handler(monkeypatch) -> None:
    monkeypatch.setattr(logs.time, "monotonic", lambda: 7.0)
    stream = FlushCountingStream()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logs.configure_logging("text", stream=stream)
        logs.access(logging.getLogger("adapter.access"), "GET", "/x", 200, 0.001, None, None)
        assert stream.flushed == ""
        logs.flush_pending()
    finally:
        root.handlers[:], root.level = saved
        logging.logThreads = logging.logProcesses = logging.logMultiprocessing = True
    assert stream.flushed.endswith(" INFO adapter.access GET /x 200 1.0ms -\n")


@pytest.fixture
def configured(monkeypatch) -> Iterator[Callable[[str], io.StringIO]]:
    """``configure_logging`` into a fresh stream; the root logger is restored afterwards."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level

    def configure(log_format: str) -> io.StringIO:
        stream = io.StringIO()
        logs.configure_logging(log_format, stream=stream)
        return stream

    try:
        yield configure
    finally:
        root.handlers[:], root.level = saved
        logging.logThreads = logging.logProcesses = logging.logMultiprocessing = True


def access_record(created: float, method: str, path: str, user: str | None) -> logging.LogRecord:
    """The record the record path makes for an access line (``logs.access`` without a
    ``LineHandler`` to write to), at ``created``."""
    record = make_record(created, msg=logs.ACCESS_MESSAGE)
    record.name = "adapter.access"
    record.args = (method, path, 200, 12.3456, user or "-")
    fields = {"method": method, "path": path, "status": 200, "duration_ms": 12.346}
    record.__dict__.update(fields, user=user, remote="10.0.0.7")
    return record


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_access_line_without_a_record_is_the_records_line(
    configured, monkeypatch, log_format: str
) -> None:
    stream = configured(log_format)
    formatter = logs.JsonFormatter() if log_format == "json" else logs.TextFormatter()

    def no_record(*args: object, **kwargs: object) -> None:
        raise AssertionError("a record was made")

    monkeypatch.setattr(logging.Logger, "makeRecord", no_record)
    clock = [0.0]
    monkeypatch.setattr(logs.time, "time", lambda: clock[0])
    expected = []
    for created in sorted(timestamps()[:200]):
        clock[0] = created
        user = "alice" if created % 2 < 1 else None
        logs.access(
            logging.getLogger("adapter.access"), "GET", "/x?a=1", 200, 0.0123456, user, "10.0.0.7"
        )
        expected.append(formatter.format(access_record(created, "GET", "/x?a=1", user)))
    logs.flush_pending()
    assert stream.getvalue().splitlines() == expected


def test_access_goes_through_logging_when_more_than_the_line_handler_is_set_up(
    configured, captured: list[logging.LogRecord]
) -> None:
    stream = configured("text")
    logs.access(logging.getLogger("adapter.test.access"), "GET", "/x", 200, 0.001, None, None)
    assert [record.getMessage() for record in captured] == ["GET /x 200 1.0ms -"]
    logs.flush_pending()
    assert stream.getvalue().endswith(" INFO adapter.test.access GET /x 200 1.0ms -\n")


@pytest.mark.parametrize(
    "obstacle", ["handler filter", "logger filter", "handler level", "disabled"]
)
def test_access_lines_obey_filters_levels_and_disabling(configured, obstacle: str) -> None:
    stream = configured("text")
    logger = logging.getLogger("adapter.test.obstacles")
    handler = logging.getLogger().handlers[0]
    try:
        if obstacle == "handler filter":
            handler.addFilter(lambda record: record.status != 404)
        elif obstacle == "logger filter":
            logger.addFilter(lambda record: record.status != 404)
        elif obstacle == "handler level":
            handler.setLevel(logging.WARNING)
        else:
            logger.disabled = True
        logs.access(logger, "GET", "/gone", 404, 0.001, None, None)
        logs.access(logger, "GET", "/here", 200, 0.001, None, None)
    finally:
        handler.filters.clear()
        logger.filters.clear()
        logger.disabled = False
    logs.flush_pending()
    lines = stream.getvalue().splitlines()
    if obstacle in ("handler level", "disabled"):
        assert lines == []
    else:
        assert [line.split(" INFO ")[1] for line in lines] == [
            "adapter.test.obstacles GET /here 200 1.0ms -"
        ]


def test_waiting_lines_are_written_when_logging_is_configured_again(configured) -> None:
    first = configured("text")
    logs.access(logging.getLogger("adapter.access"), "GET", "/x", 200, 0.001, None, None)
    configured("json")
    assert first.getvalue().endswith(" INFO adapter.access GET /x 200 1.0ms -\n")


class BrokenStream(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_failing_stream_is_reported_not_raised_by_the_periodic_flush(monkeypatch, capsys):
    monkeypatch.setattr(logging, "raiseExceptions", True)
    handler = logs.LineHandler(BrokenStream())
    handler.setFormatter(logs.TextFormatter())
    handler._waiting.append("a waiting access line")
    handler.flush_pending()  # must not raise: the server's flusher and shutdown go on
    assert "BrokenPipeError" in capsys.readouterr().err
    handler.flush_pending()  # the lost line is not retried forever
    assert capsys.readouterr().err == ""


def test_the_text_format_escapes_every_character_that_is_not_printable(configured) -> None:
    """Not only line breaks: a bidi override (U+202E) makes a viewer show the rest of the line
    reversed, zero-width and other format characters hide text, ESC starts terminal codes."""
    stream = configured("text")
    user = "eve\x1b[31m\u202egnp.exe\u200b\u2066x\u00a0y\ufeff\U000e0041\x85\u2028"
    logs.access(logging.getLogger("adapter.access"), "GET", "/x", 200, 0.001, user, None)
    logging.getLogger("adapter").warning("from %s", user)
    logs.flush_pending()
    text = stream.getvalue()
    assert all(character.isprintable() for character in text.replace("\n", ""))
    escaped = "eve\\x1b[31m\\u202egnp.exe\\u200b\\u2066x\\xa0y\\ufeff\\U000e0041\\x85\\u2028"
    assert text.splitlines()[0].endswith(f" GET /x 200 1.0ms {escaped}")
    assert text.splitlines()[1].endswith(f" WARNING adapter from {escaped}")
