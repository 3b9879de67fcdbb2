"""Tests for adapter.durations: Go-style duration flags, their messages, and the round trip."""

import argparse
import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from adapter import durations

NS = 1_000_000_000
MAX_NS = 2**63 - 1

# --- parse_duration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("+0", 0.0),
        ("-0", 0.0),
        ("0s", 0.0),
        ("-0s", 0.0),
        ("0ms", 0.0),
        ("500ms", 0.5),
        ("10s", 10.0),
        ("1m", 60.0),
        ("1m30s", 90.0),
        ("90s", 90.0),
        ("1.5s", 1.5),
        ("250us", 0.00025),
        ("250\u00b5s", 0.00025),  # MICRO SIGN, as Go prints it
        ("250\u03bcs", 0.00025),  # GREEK SMALL LETTER MU
        ("2h", 7200.0),
        ("100ns", 1e-7),
        ("1ns", 1e-9),
        ("1h30m", 5400.0),
        ("1h1m1s1ms1us1ns", 3661.001001001),
        ("+5s", 5.0),
        (".5s", 0.5),
        ("1.s", 1.0),
        ("0.1s", 0.1),
        ("1.1s", 1.1),
        ("0.5h", 1800.0),
        ("1.5m", 90.0),
        ("0.0001ms", 1e-7),
        ("007s", 7.0),
        ("1h1h", 7200.0),  # Go adds repeated terms
        ("1.0000000001s", 1.0),  # below a nanosecond is dropped, as Go drops it
        ("1." + "9" * 5000 + "ns", 1e-9),
        ("9223372036854775807ns", MAX_NS / NS),
        ("2562047h47m16.854775807s", MAX_NS / NS),
    ],
)
def test_parse_valid(text, seconds):
    assert durations.parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("+", "empty"),
        ("-", "empty"),
        ("10", "missing unit"),
        ("00", "missing unit"),
        ("1.5", "missing unit"),
        ("1m30", "missing unit"),
        ("1..5s", "missing unit"),
        ("10x", 'unknown unit "x"'),
        ("10S", 'unknown unit "S"'),
        ("1H", 'unknown unit "H"'),
        ("1d", 'unknown unit "d"'),
        ("10sec", 'unknown unit "sec"'),
        ("10 s", 'unknown unit " s"'),
        ("10s ", 'unknown unit "s "'),
        ("1e3s", 'unknown unit "e"'),
        ("1s-1s", 'unknown unit "s-"'),
        ("-5s", "must not be negative"),
        ("-1m30s", "must not be negative"),
        ("-1ns", "must not be negative"),
        ("s", "expected a number"),
        (".s", "expected a number"),
        ("abc", "expected a number"),
        (" 10s", "expected a number"),
        ("\u0661s", "expected a number"),  # ARABIC-INDIC DIGIT ONE is not a Go digit
        ("--5s", "expected a number"),
        ("9223372036854775808ns", "too large"),
        ("2562048h", "too large"),
        ("1" + "0" * 5000 + "s", "too large"),
    ],
)
def test_parse_invalid(text, reason):
    with pytest.raises(durations.InvalidDuration) as info:
        durations.parse_duration(text)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert message.startswith('invalid duration "'), message
    assert reason in message
    assert "\n" not in message


def test_missing_unit_message_is_exact():
    with pytest.raises(ValueError) as info:
        durations.parse_duration("10")
    assert str(info.value) == 'invalid duration "10": missing unit (use e.g. 10s, 500ms, 1m)'


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ("1\n", r'"1\n"'),
        ('1"s', r'"1\"s"'),
        ("1\\s", r'"1\\s"'),
        ("1\x00s", r'"1\x00s"'),
        ("x" * 100, '"' + "x" * 64 + '..."'),
    ],
)
def test_messages_quote_the_input_on_one_line(text, quoted):
    with pytest.raises(durations.InvalidDuration) as info:
        durations.parse_duration(text)
    assert str(info.value).startswith(f"invalid duration {quoted}:")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("value", [10, 1.5, None, b"10s"])
def test_parse_rejects_non_strings(value):
    with pytest.raises(TypeError):
        durations.parse_duration(value)


# --- format_duration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.0, "0s"),
        (0.5, "500ms"),
        (10, "10s"),
        (10.0, "10s"),
        (60, "1m"),
        (90, "1m30s"),
        (1.5, "1.5s"),
        (0.00025, "250us"),
        (7200, "2h"),
        (1e-7, "100ns"),
        (1e-9, "1ns"),
        (3601, "1h1s"),
        (3660, "1h1m"),
        (5400, "1h30m"),
        (3661.5, "1h1m1.5s"),
        (86400, "24h"),
        (0.0015, "1.5ms"),
        (0.001, "1ms"),
        (0.000001, "1us"),
        (0.0000015, "1.5us"),
        (59.999, "59.999s"),
        (60.001, "1m0.001s"),
        (0.1 + 0.2, "300ms"),  # rounded to whole nanoseconds from the shortest decimal
        (1 / 3, "333.333333ms"),
        (1.0000000005, "1s"),  # half a nanosecond rounds to even
        (1.0000000015, "1.000000002s"),
        (1e-10, "0s"),
        (MAX_NS // NS, "2562047h47m16s"),
    ],
)
def test_format(seconds, text):
    assert durations.format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [-1, -0.001, float("nan"), float("inf"), -float("inf"), 1e10])
def test_format_rejects(seconds):
    with pytest.raises(ValueError, match="cannot format"):
        durations.format_duration(seconds)


@pytest.mark.parametrize("seconds", [True, "10s", None])
def test_format_rejects_non_numbers(seconds):
    with pytest.raises(TypeError):
        durations.format_duration(seconds)


# --- duration_arg ------------------------------------------------------------------------------


def test_duration_arg_returns_seconds():
    assert durations.duration_arg("1m30s") == 90.0


@pytest.mark.parametrize("text", ["10", "", "10x", "-5s"])
def test_duration_arg_raises_argument_type_error_with_the_same_message(text):
    with pytest.raises(ValueError) as parse_error:
        durations.parse_duration(text)
    with pytest.raises(argparse.ArgumentTypeError) as arg_error:
        durations.duration_arg(text)
    assert str(arg_error.value) == str(parse_error.value)


def test_argparse_shows_the_message(capsys):
    parser = argparse.ArgumentParser(prog="adapter")
    parser.add_argument("--window", type=durations.duration_arg, default="60s")
    assert parser.parse_args([]).window == 60.0
    assert parser.parse_args(["--window", "500ms"]).window == 0.5
    with pytest.raises(SystemExit):
        parser.parse_args(["--window", "10"])
    assert 'argument --window: invalid duration "10": missing unit' in capsys.readouterr().err


# --- properties --------------------------------------------------------------------------------

SHORTEST_RE = re.compile(
    r"0s"
    r"|[1-9][0-9]*(\.[0-9]*[1-9])?(ms|us|ns)"
    r"|([1-9][0-9]*h)?([1-9][0-9]?m)?([1-9][0-9]?(\.[0-9]*[1-9])?s|0\.[0-9]*[1-9]s)?"
)


@given(st.integers(min_value=0, max_value=10**12))
@example(0)
@example(1)
@example(999)
@example(1000)
@example(60_000)
@example(90_000)
@example(3_600_000)
@example(3_600_001)
@example(10**12)
def test_round_trip_for_millisecond_granular_seconds(milliseconds):
    seconds = milliseconds / 1000
    text = durations.format_duration(seconds)
    assert durations.parse_duration(text) == seconds


@given(st.integers(min_value=0, max_value=MAX_NS - 10**6))  # margin: float seconds round
def test_format_is_shortest_form(nanoseconds):
    text = durations.format_duration(nanoseconds / NS)
    assert text and SHORTEST_RE.fullmatch(text), text
    if text.endswith(("ms", "us", "ns")):
        # Below a second: the largest unit that keeps a whole part.
        assert 1 <= float(text[:-2]) < 1000, text
    else:
        terms = re.fullmatch(r"(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9.]+)s)?", text)
        assert terms is not None, text
        _, minutes, seconds = terms.groups()
        # Minutes and seconds stay below 60, or the next larger unit would have been used.
        assert minutes is None or int(minutes) < 60, text
        assert seconds is None or float(seconds) < 60, text


@given(
    hours=st.integers(min_value=0, max_value=10_000),
    minutes=st.integers(min_value=0, max_value=10_000),
    seconds=st.integers(min_value=0, max_value=10_000),
    milliseconds=st.integers(min_value=0, max_value=10_000),
    microseconds=st.integers(min_value=0, max_value=10_000),
    nanoseconds=st.integers(min_value=0, max_value=10_000),
    micro=st.sampled_from(["us", "\u00b5s", "\u03bcs"]),
)
def test_terms_add_up_in_integer_nanoseconds(
    hours, minutes, seconds, milliseconds, microseconds, nanoseconds, micro
):
    text = f"{hours}h{minutes}m{seconds}s{milliseconds}ms{microseconds}{micro}{nanoseconds}ns"
    total_ns = (
        ((hours * 60 + minutes) * 60 + seconds) * NS
        + milliseconds * 1_000_000
        + microseconds * 1_000
        + nanoseconds
    )
    assert durations.parse_duration(text) == total_ns / NS
