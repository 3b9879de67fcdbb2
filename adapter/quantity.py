"""Kubernetes ``resource.Quantity`` strings, as the custom metrics API needs them.

Role: the pure core behind every ``value`` the adapter serves. ``format_quantity`` turns a metric
value into the canonical DecimalSI string that Go's ``Quantity.String()`` would emit,
``parse_quantity`` reads any string apimachinery's ``ParseQuantity`` reads (HPA targets, flags,
test fixtures), and ``milli_value`` is the single conversion the HPA applies to every value it
receives (``MilliValue()``), so an HPA emulation can reproduce its arithmetic exactly.

Why exact strings: the HPA and ``kubectl`` never see our floats, only these strings, and Go parses
them by rounding *up* to nano precision. Formatting therefore rounds the same way, so what we
emit is exactly what the HPA reads back; and it refuses what the HPA cannot hold (NaN, infinities,
magnitudes whose milli-value overflows int64) instead of emitting something Go would reject or
silently wrap.

Pure: no I/O, no logging, no clock, no aiohttp. Values are ``decimal.Decimal`` so nothing
passes through binary floating point after formatting starts, except in ``format_quantities``,
whose float fast path is exact by the bound its docstring gives (and falls back otherwise).
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable, Sequence
from decimal import ROUND_CEILING, ROUND_UP, Context, Decimal, localcontext
from typing import Final

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "MAX_MAGNITUDE",
    "InvalidQuantity",
    "format_quantities",
    "format_quantity",
    "milli_value",
    "parse_quantity",
]

_INT64_MAX: Final = 2**63 - 1
_INT32_MIN: Final = -(2**31)
_INT32_MAX: Final = 2**31 - 1

MAX_MAGNITUDE: Final = Decimal("9223372036854775.807")
"""The largest magnitude ``format_quantity`` accepts: (2**63 - 1) / 1000.

The HPA turns every value into ``MilliValue()``, an int64 equal to ceil(value x 1000). Up to
this bound (inclusive, after rounding up to nano) that milli-value is at most 2**63 - 1 in
magnitude; one nano more and Go would overflow. The bound is symmetric for simplicity, although
int64 could hold one more milli-unit below zero. The nearest floats are 9223372036854774.0
(accepted) and 9223372036854776.0 (rejected)."""

_MILLI_FLOOR_EXCLUSIVE: Final = Decimal("-9223372036854775.809")  # (-2**63 - 1) / 1000
_NANO: Final = Decimal("1e-9")

_SUFFIX_BY_EXPONENT: Final = {
    -9: "n",
    -6: "u",
    -3: "m",
    0: "",
    3: "k",
    6: "M",
    9: "G",
    12: "T",
    15: "P",
    18: "E",
}
_EXPONENT_BY_SUFFIX: Final = {suffix: exp for exp, suffix in _SUFFIX_BY_EXPONENT.items()}
_BINARY_SHIFT_BY_SUFFIX: Final = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_MAX_DECIMAL_EXPONENT: Final = 18

# apimachinery's grammar, written as one regular expression. ``[0-9]`` rather than ``\d`` because
# ``\d`` also matches non-ASCII digits, which Go rejects. The exponent alternative comes first so
# "1E3" is 10**3 while "1E" alone is the suffix exa.
_QUANTITY_RE: Final = re.compile(
    r"(?P<sign>[+-]?)"
    r"(?:(?P<int>[0-9]+)(?:\.(?P<frac>[0-9]*))?|\.(?P<bare_frac>[0-9]+))"
    r"(?P<suffix>[eE](?P<exp>[+-]?[0-9]+)|[KMGTPE]i|[numkMGTPE])?"
)
_GRAMMAR_HINT: Final = (
    "expected [+-]digits[.digits] or .digits, then optionally one of "
    "n u m k M G T P E, Ki Mi Gi Ti Pi Ei, or e<exponent>"
)


class InvalidQuantity(ValueError):
    """A value that is not, or cannot become, a Kubernetes Quantity.

    The message is one line and names the offending input, so it can go straight into a flag
    error or a ``Status`` message.
    """


def format_quantity(value: float | int | Decimal) -> str:
    """Return the canonical DecimalSI Quantity string Go would emit for ``value``.

    Floats are read as their shortest round-trip decimal (``repr``), so ``0.1`` is ``100m`` and
    not the binary expansion 0.1000000000000000055...; the result is then rounded up (away from
    zero) to nano precision, as Go's parser would round it. The string has no fraction, uses the
    largest suffix that loses nothing, has a sign only when negative, and is ``0`` for any zero.

    Examples: ``1.5`` -> ``"1500m"``, ``2000`` -> ``"2k"``, ``2.5e-7`` -> ``"250n"``,
    ``1e-12`` -> ``"1n"``, ``-0.5`` -> ``"-500m"``.

    Raises ``InvalidQuantity`` for NaN, infinities and magnitudes above ``MAX_MAGNITUDE``;
    ``TypeError`` for ``bool`` and non-numbers (``True`` as a metric value is a bug, not ``1``).
    """
    if type(value) is float and math.isfinite(value) and abs(value) < _FLOAT_FAST_PATH_BOUND:
        if value.is_integer():
            return _format_integer(int(value))
        return _format_float(value)
    exact = _to_decimal(value)
    if not exact.is_finite():
        raise InvalidQuantity(f"cannot format {value!r} as a quantity: not a finite number")
    if exact.copy_abs() > MAX_MAGNITUDE:
        raise InvalidQuantity(
            f"cannot format {value!r} as a quantity: magnitude above {MAX_MAGNITUDE}, "
            "the HPA's milli-value would overflow int64"
        )
    with localcontext(_exact_context(exact)):
        rounded = exact.quantize(_NANO, rounding=ROUND_UP)
    return _canonical(rounded)


_FLOAT_MARGIN_ULPS: Final = 4.0
"""How far, in units in the last place, a float's nanos must lie from every integer for their
float ceiling to be exact (the float product is within 1.5 of them of the exact one)."""


def format_quantities(
    values: Sequence[float] | NDArray[np.float64],
    exact: Callable[[float], str] = format_quantity,
) -> list[str]:
    """``format_quantity`` of each float, vectorized for the common case of a metric answer.

    For a positive float ``v``, ``x = v * 1e9`` in float arithmetic lies within 1.5 ulp(x) of
    the exact nanos of ``repr(v)`` (``repr`` is within half an ulp of ``v``, 1e9 scales that to
    at most 0.93 ulp(x), the product rounds by half an ulp more). So where ``x`` is more than
    ``_FLOAT_MARGIN_ULPS`` ulps from both neighbouring integers, ``ceil(x)`` is exactly the
    nanos Go would read, and unless they are a multiple of 1,000 the canonical string is
    ``<nanos>n``. Every other value (whole or round numbers, zero, negatives, values near the
    nano grid, huge ones, NaN) goes through ``exact`` one by one, which raises as
    ``format_quantity`` does. A property test holds the two equal.
    """
    v = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        nanos = v * 1e9
        ceiling = np.ceil(nanos)
        margin = _FLOAT_MARGIN_ULPS * np.spacing(nanos)
        fast = (v > 0) & (ceiling - nanos > margin) & (nanos - (ceiling - 1.0) > margin)
        whole = np.where(fast, ceiling, 0.0).astype(np.int64)
    fast &= whole % 1000 != 0
    floats = v.tolist()
    if not fast.any():  # gauges: whole numbers mostly
        return [exact(value) for value in floats]
    texts = [f"{n}n" for n in whole.tolist()]
    for i in np.flatnonzero(~fast).tolist():
        texts[i] = exact(floats[i])
    return texts


def parse_quantity(text: str) -> Decimal:
    """Parse a Quantity string the way apimachinery's ``ParseQuantity`` does.

    Grammar: an optional sign, then ``digits[.digits]`` (``1.`` is accepted, as Go does) or
    ``.digits``, then at most one suffix: decimal SI ``n u m k M G T P E``, binary ``Ki Mi Gi Ti
    Pi Ei`` (powers of 1024) or an exponent ``e<int>``/``E<int>`` (``E`` alone is exa). No
    whitespace anywhere. The value is rounded up (away from zero) to nano precision, and
    binary-suffixed magnitudes are capped at 2**63 - 1, both as Go does. Decimal magnitudes are
    not capped (``"12E"`` is 1.2e19), again as Go.

    Examples: ``"1500m"`` -> ``Decimal("1.5")``, ``"1Ki"`` -> ``1024``, ``"1.3E+6"`` ->
    ``1300000``, ``"3.001n"`` -> ``4E-9``, ``"-0.00000012345"`` -> ``-1.24E-7``.

    The result is numerically exact; its exponent is not normalized (``"1500m"`` gives
    ``Decimal("1.500")``, which compares equal to ``Decimal("1.5")``).

    Raises ``InvalidQuantity`` (one line, naming ``text``) for anything else, including strings
    Go happens to read as zero although they hold no digit (``"-"``, ``"."``, ``"m"``) and
    exponents outside int32, which Go would silently wrap around.
    """
    if not isinstance(text, str):
        raise TypeError(f"quantity must be a str, not {type(text).__name__}")
    match = _QUANTITY_RE.fullmatch(text)
    if match is None:
        raise InvalidQuantity(f"invalid quantity {text!r}: {_GRAMMAR_HINT}")

    integer_digits = match["int"] or ""
    fraction_digits = match["frac"] or match["bare_frac"] or ""
    suffix = match["suffix"] or ""
    exponent = -len(fraction_digits)
    binary_shift = 0
    if match["exp"] is not None:
        power = int(match["exp"])
        if not _INT32_MIN <= power <= _INT32_MAX:
            raise InvalidQuantity(f"invalid quantity {text!r}: exponent out of int32 range")
        exponent += power
    elif suffix in _BINARY_SHIFT_BY_SUFFIX:
        binary_shift = _BINARY_SHIFT_BY_SUFFIX[suffix]
    else:
        exponent += _EXPONENT_BY_SUFFIX[suffix]

    # The constructor is exact whatever the context; the context only has to keep the product
    # and the rounding below exact, so it gets room for every digit plus 2**60 (19 digits).
    magnitude = Decimal(f"{integer_digits}{fraction_digits}E{exponent}")
    with localcontext(_exact_context(magnitude, extra_digits=40)):
        if binary_shift:
            magnitude *= 2**binary_shift
        if exponent < -9:  # finer than nano: round up, away from zero
            magnitude = magnitude.quantize(_NANO, rounding=ROUND_UP)
        if binary_shift and magnitude > _INT64_MAX:
            magnitude = Decimal(_INT64_MAX)
    if magnitude == 0:
        return Decimal(0)
    # copy_negate, not unary minus: the latter would round to the default 28-digit context.
    return magnitude.copy_negate() if match["sign"] == "-" else magnitude


def milli_value(q: Decimal) -> int:
    """Return ceil(q x 1000), the int64 the HPA computes from every value (``MilliValue()``).

    Any positive value becomes at least 1: ``250n`` counts as one milli-unit, which is why
    sub-milli metrics should be exposed in a smaller unit.

    For negative values this is the mathematical ceiling, as the spec states. Go is not
    consistent there: quantities parsed into its int64 fast path round away from zero instead
    (``-1500u`` gives -2, not -1). Non-negative values, the only ones an HPA metric should
    carry, agree on every path.

    Raises ``InvalidQuantity`` for NaN, infinities and results outside int64 (Go would wrap).
    """
    if not q.is_finite():
        raise InvalidQuantity(f"cannot take the milli-value of {q}: not a finite number")
    # ceil(y) <= 2**63 - 1  <=>  y <= 2**63 - 1;  ceil(y) >= -2**63  <=>  y > -2**63 - 1.
    if q > MAX_MAGNITUDE or q <= _MILLI_FLOOR_EXCLUSIVE:
        raise InvalidQuantity(f"milli-value of {q} does not fit in int64")
    with localcontext(_exact_context(q, extra_digits=4)):
        return int(q.scaleb(3).to_integral_value(rounding=ROUND_CEILING))


def _to_decimal(value: object) -> Decimal:
    """Convert an accepted number to the decimal it denotes (floats via their shortest repr)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise TypeError("a bool is not a quantity")
    if isinstance(value, numbers.Integral):  # int, numpy integers
        return Decimal(int(value))
    if isinstance(value, numbers.Real):  # float, numpy floats
        return Decimal(repr(float(value)))
    raise TypeError(f"quantity value must be a number, not {type(value).__name__}")


def _exact_context(value: Decimal, extra_digits: int = 12) -> Context:
    """A context wide enough that arithmetic on ``value`` near nano scale stays exact.

    ``quantize`` to 1e-9 adds up to nine digits and ``scaleb`` none; the default context (28
    digits) would otherwise round long ``Decimal`` inputs silently.
    """
    sign, digits, exponent = value.as_tuple()
    del sign
    width = len(digits) + extra_digits
    if isinstance(exponent, int):
        width += max(0, exponent) + max(0, -9 - exponent)
    return Context(prec=max(width, 28), Emax=999_999_999_999, Emin=-999_999_999_999)


_FLOAT_FAST_PATH_BOUND: Final = 9.2e15
"""Below this every float is within ``MAX_MAGNITUDE`` even after rounding up to the nano."""


def _format_integer(value: int) -> str:
    """The canonical form of a whole number (gauges mostly are): zeros folded into k, M, G..."""
    if value == 0:
        return "0"
    magnitude, exponent = abs(value), 0
    while magnitude % 1000 == 0 and exponent < _MAX_DECIMAL_EXPONENT:
        magnitude //= 1000
        exponent += 3
    return ("-" if value < 0 else "") + str(magnitude) + _SUFFIX_BY_EXPONENT[exponent]


def _format_float(value: float) -> str:
    """``format_quantity`` for a finite float, in integer arithmetic (no ``Decimal``).

    The metrics API formats one value per pod per query, so this is on the hot path. It reads
    ``repr(value)`` (the shortest round-trip decimal, as the ``Decimal`` path does), rounds up to
    the nano grid and renders the same canonical string; a property test holds the two equal.
    """
    text = repr(value)
    negative = text.startswith("-")
    mantissa_text, _, exponent_text = text.lstrip("-").partition("e")
    whole, _, fraction = mantissa_text.partition(".")
    digits = int(whole + fraction)
    exponent = (int(exponent_text) if exponent_text else 0) - len(fraction)
    # On the nano grid; finer digits round up (away from zero), as Go's parser rounds.
    nanos = digits * 10 ** (exponent + 9) if exponent >= -9 else -(-digits // 10 ** (-9 - exponent))
    if nanos == 0:
        return "0"
    exponent = -9
    while nanos % 10 == 0:
        nanos //= 10
        exponent += 1
    shift = exponent % 3
    return (
        ("-" if negative else "") + str(nanos * 10**shift) + _SUFFIX_BY_EXPONENT[exponent - shift]
    )


def _canonical(value: Decimal) -> str:
    """Render a nano-grid decimal as canonical DecimalSI (no bound checks).

    Writes ``|value| = m x 10**e`` with no trailing zeros in ``m``, lowers ``e`` to a multiple of
    three (a smaller suffix, never a fraction), and above exa keeps the suffix ``E`` and grows the
    mantissa instead (``1e21`` -> ``1000E``). ``format_quantity``'s bound keeps it below peta.
    """
    if value == 0:
        return "0"
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite, checked by the callers
    mantissa = int("".join(map(str, digits)))
    while mantissa % 10 == 0:
        mantissa //= 10
        exponent += 1
    shift = exponent % 3
    mantissa *= 10**shift
    exponent -= shift
    if exponent > _MAX_DECIMAL_EXPONENT:
        mantissa *= 10 ** (exponent - _MAX_DECIMAL_EXPONENT)
        exponent = _MAX_DECIMAL_EXPONENT
    return ("-" if sign else "") + str(mantissa) + _SUFFIX_BY_EXPONENT[exponent]
