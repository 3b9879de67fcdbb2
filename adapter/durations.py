"""Durations for command-line flags, written the way Go's ``time.ParseDuration`` reads them.

Role: the one place that turns ``500ms``, ``10s``, ``1m30s`` into seconds and back. Flags such
as the metric window or the staleness age are read with ``duration_arg`` (argparse ``type=``),
and log lines and docs print durations with ``format_duration``, so operators write and read the
same notation they use for Kubernetes components.

Why Go's grammar: operators copy values between our flags and Go tools (``--horizontal-pod-
autoscaler-sync-period=15s``); accepting exactly that language avoids surprises. Arithmetic is
done in integer nanoseconds, as Go does, so ``1.1s`` is exactly 1100000000 ns before the single
conversion to float seconds.

Deliberate differences from Go: negative durations are rejected (no flag here wants one), a
bare number other than ``0`` gets a hint about the missing unit, and ``format_duration`` prints
the shortest form (``1m`` rather than Go's ``1m0s``) using ``us`` rather than ``µs``.

Pure and standard-library only (argparse is imported for its exception type alone): no I/O, no
logging, no clock.
"""

from __future__ import annotations

import argparse
import numbers
import re
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Final

__all__ = ["InvalidDuration", "duration_arg", "format_duration", "parse_duration"]

_NS_PER_US: Final = 1_000
_NS_PER_MS: Final = 1_000_000
_NS_PER_S: Final = 1_000_000_000
_NS_PER_M: Final = 60 * _NS_PER_S
_NS_PER_H: Final = 60 * _NS_PER_M
_MAX_NS: Final = 2**63 - 1
"""Go's limit (int64 nanoseconds, about 292 years); kept so both sides agree on what is valid."""

_MAX_INTEGER_DIGITS: Final = len(str(_MAX_NS))
_MAX_FRACTION_DIGITS: Final = 18

_NS_PER_UNIT: Final = {
    "ns": 1,
    "us": _NS_PER_US,
    "\u00b5s": _NS_PER_US,  # MICRO SIGN, what Go prints
    "\u03bcs": _NS_PER_US,  # GREEK SMALL LETTER MU, what people type
    "ms": _NS_PER_MS,
    "s": _NS_PER_S,
    "m": _NS_PER_M,
    "h": _NS_PER_H,
}
_ESCAPES: Final = {'"': '\\"', "\\": "\\\\"}
_MAX_QUOTED_CHARS: Final = 64
_UNITS_HINT: Final = "ns, us, µs, ms, s, m, h"
_EXAMPLES: Final = "use e.g. 10s, 500ms, 1m"

# One "<number><unit>" term. Like Go, the unit is everything up to the next digit or dot, so an
# unknown unit is reported whole ("10sec" -> "sec") rather than as a stray character.
_TERM_RE: Final = re.compile(r"(?P<int>[0-9]*)(?:(?P<dot>\.)(?P<frac>[0-9]*))?(?P<unit>[^0-9.]*)")


class InvalidDuration(ValueError):
    """A duration string that cannot be read; the message is one line and quotes the input."""


def parse_duration(text: str) -> float:
    """Return the duration ``text`` denotes, in seconds.

    Grammar (Go's): an optional sign, then one or more ``<number><unit>`` terms, where number is
    ``digits``, ``digits.digits``, ``digits.`` or ``.digits`` and unit is one of ``ns``,
    ``us``/``µs``, ``ms``, ``s``, ``m``, ``h``. Terms add up (``1h30m``); a lone ``0`` is zero.
    Digits below a nanosecond are dropped, as Go drops them.

    Examples: ``"500ms"`` -> 0.5, ``"1m30s"`` -> 90.0, ``"1.5s"`` -> 1.5, ``"250us"`` ->
    0.00025, ``"2h"`` -> 7200.0.

    Raises ``InvalidDuration`` (a ``ValueError``) naming the text for an empty string, a number
    without unit (``"10"``), an unknown unit, anything negative (``"-0s"`` is zero, so allowed),
    malformed text and durations beyond Go's int64 nanoseconds.
    """
    if not isinstance(text, str):
        raise TypeError(f"duration must be a str, not {type(text).__name__}")
    nanoseconds = _parse_nanoseconds(text)
    return nanoseconds / _NS_PER_S


def format_duration(seconds: float) -> str:
    """Return the shortest duration string for ``seconds``, one that ``parse_duration`` reads.

    Whole hours, minutes and seconds are written as terms with zero terms left out (``1m``,
    ``1m30s``, ``1h0m5s`` becomes ``1h5s``); sub-second rests are a decimal fraction of the
    seconds term (``1.5s``); durations below one second use the largest of ``ms``, ``us``,
    ``ns`` that keeps a whole part (``500ms``, ``1.5ms``, ``250us``). Zero is ``0s``.

    The value is first rounded to whole nanoseconds (half to even), starting from the float's
    shortest decimal, so ``0.1 + 0.2`` prints as ``300ms`` and anything below half a
    nanosecond prints as ``0s``.

    Raises ``ValueError`` for negative, NaN or infinite ``seconds`` and for durations beyond
    int64 nanoseconds.
    """
    if isinstance(seconds, bool) or not isinstance(seconds, numbers.Real):
        raise TypeError(f"seconds must be a number, not {type(seconds).__name__}")
    if isinstance(seconds, numbers.Integral):
        exact = Decimal(int(seconds))
    else:
        exact = Decimal(repr(float(seconds)))
    if not exact.is_finite() or exact < 0:
        raise ValueError(f"cannot format {seconds!r} as a duration: need a finite number >= 0")
    exact_ns = exact.scaleb(9).to_integral_value(rounding=ROUND_HALF_EVEN)
    if exact_ns > _MAX_NS:
        raise ValueError(f"cannot format {seconds!r} as a duration: beyond int64 nanoseconds")
    return _format_nanoseconds(int(exact_ns))


def duration_arg(text: str) -> float:
    """``parse_duration`` for argparse's ``type=``: the same message, as ``ArgumentTypeError``.

    argparse prints ``ArgumentTypeError`` messages verbatim after the flag name, whereas for a
    plain ``ValueError`` it prints only "invalid duration_arg value".
    """
    try:
        return parse_duration(text)
    except InvalidDuration as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def _parse_nanoseconds(text: str) -> int:
    """Parse ``text`` into non-negative integer nanoseconds (the whole grammar lives here)."""
    quoted = _quote(text)
    rest = text
    negative = False
    if rest[:1] in ("+", "-"):
        negative = rest[0] == "-"
        rest = rest[1:]
    if rest == "0":
        return 0
    if not rest:
        raise InvalidDuration(f"invalid duration {quoted}: empty ({_EXAMPLES})")

    total = 0
    position = 0
    while position < len(rest):
        term = _TERM_RE.match(rest, position)
        assert term is not None  # every group is optional, so the pattern always matches
        integer, fraction, unit = term["int"], term["frac"] or "", term["unit"]
        if not integer and not fraction:
            raise InvalidDuration(
                f"invalid duration {quoted}: expected a number at {_quote(rest[position:])} "
                f"({_EXAMPLES})"
            )
        if not unit:
            raise InvalidDuration(f"invalid duration {quoted}: missing unit ({_EXAMPLES})")
        scale = _NS_PER_UNIT.get(unit)
        if scale is None:
            raise InvalidDuration(
                f"invalid duration {quoted}: unknown unit {_quote(unit)} "
                f"(valid units: {_UNITS_HINT})"
            )
        integer = integer.lstrip("0")
        if len(integer) > _MAX_INTEGER_DIGITS:
            raise InvalidDuration(f"invalid duration {quoted}: too large (max about 292 years)")
        total += int(integer or "0") * scale
        if fraction:
            # Like Go, only the leading 18 fraction digits count; they reach below 1e-5 ns even
            # for hours, and the cap keeps int() away from its 4300-digit limit.
            fraction = fraction[:_MAX_FRACTION_DIGITS]
            total += int(fraction) * scale // 10 ** len(fraction)
        if total > _MAX_NS:
            raise InvalidDuration(f"invalid duration {quoted}: too large (max about 292 years)")
        position = term.end()

    if negative and total:
        raise InvalidDuration(f"invalid duration {quoted}: must not be negative")
    return total


def _format_nanoseconds(nanoseconds: int) -> str:
    """Render non-negative nanoseconds in the shortest unit-suffixed form."""
    if nanoseconds == 0:
        return "0s"
    if nanoseconds < _NS_PER_S:
        for unit, scale in (("ms", _NS_PER_MS), ("us", _NS_PER_US), ("ns", 1)):
            if nanoseconds >= scale:
                return _decimal(nanoseconds, scale) + unit
    hours, rest = divmod(nanoseconds, _NS_PER_H)
    minutes, rest = divmod(rest, _NS_PER_M)
    parts = []
    if hours:
        parts.append(f"{hours}h")
    if minutes:
        parts.append(f"{minutes}m")
    if rest:
        parts.append(_decimal(rest, _NS_PER_S) + "s")
    return "".join(parts)


def _decimal(amount: int, scale: int) -> str:
    """``amount / scale`` as an exact decimal without trailing zeros (scale is a power of 10)."""
    whole, remainder = divmod(amount, scale)
    if not remainder:
        return str(whole)
    digits = len(str(scale)) - 1
    return f"{whole}.{remainder:0{digits}d}".rstrip("0")


def _quote(text: str) -> str:
    """Double-quote ``text`` Go-style for a one-line message: escaped, and cut if very long."""
    if len(text) > _MAX_QUOTED_CHARS:
        text = text[:_MAX_QUOTED_CHARS] + "..."
    escaped = "".join(
        _ESCAPES.get(char) or (char if char.isprintable() else repr(char)[1:-1]) for char in text
    )
    return f'"{escaped}"'
