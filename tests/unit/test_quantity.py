"""Tests for adapter.quantity: exact Quantity strings, Go's parse grammar, and the HPA milli-value.

Exact-string tables pin the canonical form (section 6 of the custom metrics API notes); the
properties cross-check our strings against the official Kubernetes Python client's parser.
"""

import math
import re
from decimal import ROUND_UP, Decimal
from fractions import Fraction

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from kubernetes.utils import parse_quantity as client_parse_quantity

from adapter import quantity

NANO = Decimal("1e-9")
INT64_MAX = 2**63 - 1
CANONICAL_RE = re.compile(r"-?(0|[1-9][0-9]*)(n|u|m|k|M|G|T|P|E)?")
LARGEST_ACCEPTED_FLOAT = 9223372036854774.0
SMALLEST_REJECTED_FLOAT = 9223372036854776.0


def expected_decimal(x: float) -> Decimal:
    """What Go reads back from a correct string: the shortest decimal, rounded up to nano."""
    return Decimal(repr(x)).quantize(NANO, rounding=ROUND_UP)


# --- format_quantity: exact strings ---------------------------------------------------------

SECTION_6_VECTORS = [
    (0, "0"),
    (12, "12"),
    (12.0, "12"),
    (0.1, "100m"),
    (0.25, "250m"),
    (1.5, "1500m"),
    (1500, "1500"),
    (2000, "2k"),
    (1234567, "1234567"),
    (1e6, "1M"),
    (1.5e9, "1500M"),
    (0.0005, "500u"),
    (0.0123, "12300u"),
    (2.5e-7, "250n"),
    (1.0000001, "1000000100n"),
    (1e-12, "1n"),
    (-0.5, "-500m"),
]


@pytest.mark.parametrize(("value", "expected"), SECTION_6_VECTORS)
def test_format_section_6_vectors(value, expected):
    assert quantity.format_quantity(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # zero in every spelling, never "-0"
        (0.0, "0"),
        (-0.0, "0"),
        (Decimal("-0"), "0"),
        (Decimal("0E+5"), "0"),
        # floats read through their shortest repr, then rounded up (away from zero) to nano
        (0.1 + 0.2, "300000001n"),
        (1e-10, "1n"),
        (-1e-10, "-1n"),
        (5e-324, "1n"),
        (-2.5e-7, "-250n"),
        (1.0000000001, "1000000001n"),
        # suffixes up the ladder
        (1e3, "1k"),
        (1e9, "1G"),
        (1e12, "1T"),
        (1e15, "1P"),
        (2.5e15, "2500T"),
        (9.2e15, "9200T"),
        (1e-3, "1m"),
        (1e-6, "1u"),
        (1e-9, "1n"),
        (123.456, "123456m"),
        (-1234567.125, "-1234567125m"),
        (1024, "1024"),
        (2**53, "9007199254740992"),
        # Decimal and int inputs are taken exactly (no float detour)
        (Decimal("0.1"), "100m"),
        (Decimal("1.0000000001"), "1000000001n"),
        (Decimal("-1.0000000001"), "-1000000001n"),
        (Decimal("12.000"), "12"),
        (Decimal("1E+3"), "1k"),
        (Decimal("0.333333333333333333333333333333333"), "333333334n"),
        (9007199254740993, "9007199254740993"),
        # the bound itself
        (quantity.MAX_MAGNITUDE, "9223372036854775807m"),
        (-quantity.MAX_MAGNITUDE, "-9223372036854775807m"),
        (Decimal("9223372036854775.8069999999"), "9223372036854775807m"),
        (LARGEST_ACCEPTED_FLOAT, "9223372036854774"),
    ],
)
def test_format_exact_strings(value, expected):
    assert quantity.format_quantity(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        math.nan,
        -math.nan,
        math.inf,
        -math.inf,
        Decimal("NaN"),
        Decimal("sNaN"),
        Decimal("Infinity"),
        Decimal("-Infinity"),
        SMALLEST_REJECTED_FLOAT,
        -SMALLEST_REJECTED_FLOAT,
        9.3e15,
        1e300,
        2**63,
        -(2**63),
        Decimal("9223372036854775.8070000001"),
        Decimal("-9223372036854775.808"),
        Decimal("1E+100000"),
    ],
)
def test_format_rejects_what_the_hpa_cannot_hold(value):
    with pytest.raises(quantity.InvalidQuantity) as info:
        quantity.format_quantity(value)
    assert isinstance(info.value, ValueError)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("value", [True, False, "1", None, [1]])
def test_format_rejects_non_numbers(value):
    with pytest.raises(TypeError):
        quantity.format_quantity(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("1e18"), "1E"),
        (Decimal("1.5e18"), "1500P"),
        (Decimal("1e21"), "1000E"),
        (Decimal("-5e21"), "-5000E"),
    ],
)
def test_canonical_core_caps_the_suffix_at_exa(value, expected):
    # format_quantity's bound keeps real output below peta, so the cap at E is exercised on the
    # unbounded core directly.
    assert quantity._canonical(value) == expected


# --- parse_quantity ----------------------------------------------------------------------------

PARSE_VALID = [
    # zeros
    ("0", "0"),
    ("-0", "0"),
    ("+0", "0"),
    ("0n", "0"),
    ("0m", "0"),
    ("0Ki", "0"),
    ("0.000", "0"),
    ("0e5", "0"),
    # plain and signed numbers
    ("1", "1"),
    ("+1", "1"),
    ("-1", "-1"),
    ("00012", "12"),
    ("9.01", "9.01"),
    # decimal SI suffixes
    ("5n", "5e-9"),
    ("4u", "4e-6"),
    ("3m", "0.003"),
    ("1500m", "1.5"),
    ("8k", "8000"),
    ("50k", "50000"),
    ("7M", "7e6"),
    ("6G", "6e9"),
    ("5T", "5e12"),
    ("2P", "2e15"),
    ("1E", "1e18"),
    ("12E", "12e18"),  # decimal magnitudes are not capped
    ("100.035k", "100035"),
    ("6.987654321G", "6987654321"),
    ("1.01E", "1.01e18"),
    # binary suffixes
    ("1Ki", "1024"),
    ("8Ki", "8192"),
    ("7Mi", str(7 * 2**20)),
    ("6Gi", str(6 * 2**30)),
    ("5Ti", str(5 * 2**40)),
    ("4Pi", str(4 * 2**50)),
    ("3Ei", str(3 * 2**60)),
    ("100.035Ki", "102435.84"),
    ("0.5Mi", "524288"),
    ("0.025Ti", "27487790694.4"),
    # binary magnitudes are capped at 2**63 - 1, as Go does
    ("9Ei", str(INT64_MAX)),
    ("-9Ei", str(-INT64_MAX)),
    ("9223372036854775807Ki", str(INT64_MAX)),
    # exponents
    ("1E-3", "0.001"),
    ("1e3", "1000"),
    ("1e+3", "1000"),
    ("1e03", "1000"),
    ("1.3E+6", "1300000"),
    ("1.7E18", "1.7e18"),
    ("0.5e-2", "0.005"),
    ("-1.2e3", "-1200"),
    ("1e2147483647", "1e2147483647"),
    ("1e-2147483648", "1e-9"),
    # rounding up to nano, away from zero
    ("3.001n", "4e-9"),
    ("1.1E-9", "2e-9"),
    ("0.0000000001", "1e-9"),
    ("0.0000000005", "1e-9"),
    ("0.9n", "1e-9"),
    ("0.00000012345", "1.24e-7"),
    ("0.00000012354", "1.24e-7"),
    ("-0.00000012345", "-1.24e-7"),
    ("-0.0000000001", "-1e-9"),
    ("0.000000000001Ki", "2e-9"),
    ("1e-2147483647", "1e-9"),
    ("1.0000000000000000000000000000001", "1.000000001"),
    # Go's lenient forms
    (".001", "0.001"),
    (".0001k", "0.1"),
    ("+.5", "0.5"),
    ("-.5", "-0.5"),
    ("1.", "1"),
    ("1.G", "1e9"),
    # long inputs stay exact (no 28-digit context rounding)
    ("123456789012345678901234567890.5", "123456789012345678901234567890.5"),
    ("-123456789012345678901234567890.5", "-123456789012345678901234567890.5"),
    ("123456789012345678901.0000000001", "123456789012345678901.000000001"),
    ("1" * 5000, "1" * 5000),
]


@pytest.mark.parametrize(("text", "expected"), PARSE_VALID)
def test_parse_valid(text, expected):
    assert quantity.parse_quantity(text) == Decimal(expected)


PARSE_INVALID = [
    "",
    " ",
    " 1",
    "1 ",
    "5 m",
    "1\n",
    "1.2.3",
    "1.1.M",
    "1+1.0M",
    "1ki",
    "1K",
    "1Kii",
    "0.1mi",
    "0.1am",
    "1mm",
    "1m1",
    "1e3m",
    "1e",
    "1e+",
    "-3.01e-",
    "1e1.5",
    "e3",
    "aoeu",
    ".5i",
    "1i",
    "-3.01i",
    "NaN",
    "nan",
    "inf",
    "-Inf",
    "Infinity",
    "--1",
    "+-1",
    "1,5",
    "1_000",
    "0x10",
    "\u0661",  # ARABIC-INDIC DIGIT ONE: a digit to Python, not to Go
    "1\uff4d",  # FULLWIDTH m
    # Go reads these as zero although they hold no digit; we refuse them.
    "-",
    "+",
    ".",
    "-.",
    "m",
    "Ki",
    # Go would wrap this exponent to int32 silently.
    "1e2147483648",
    "1e-2147483649",
]


@pytest.mark.parametrize("text", PARSE_INVALID)
def test_parse_invalid(text):
    with pytest.raises(quantity.InvalidQuantity) as info:
        quantity.parse_quantity(text)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert message.startswith(f"invalid quantity {text!r}: ")
    assert "\n" not in message


@pytest.mark.parametrize("value", [1, 1.5, Decimal("1"), None, b"1"])
def test_parse_rejects_non_strings(value):
    with pytest.raises(TypeError):
        quantity.parse_quantity(value)


@pytest.mark.parametrize(("value", "text"), SECTION_6_VECTORS)
def test_parse_reads_back_every_section_6_vector(value, text):
    assert quantity.parse_quantity(text) == expected_decimal(value)


# --- milli_value -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("1", 1000),
        ("1500m", 1500),
        ("1m", 1),
        ("250n", 1),  # below one milli-unit still counts as one
        ("1n", 1),
        ("1000001n", 2),
        ("1.0000001", 1001),
        ("2k", 2_000_000),
        ("-1500m", -1500),
        ("-1500u", -1),  # the ceiling; Go's int64 fast path would give -2 (see docstring)
        ("-250n", 0),
        ("9223372036854775807m", INT64_MAX),
        ("-9223372036854775807m", -INT64_MAX),
        ("-9223372036854775808m", -(2**63)),
        ("-9223372036854775808999999n", -(2**63)),
        ("8Pi", 8 * 2**50 * 1000),
    ],
)
def test_milli_value(text, expected):
    assert quantity.milli_value(quantity.parse_quantity(text)) == expected


def test_milli_value_does_not_round_long_decimals_first():
    # 32 significant digits: a 28-digit context would drop the tail and give 1000.
    assert quantity.milli_value(Decimal("1.0000000000000000000000000000001")) == 1001


@pytest.mark.parametrize(
    "value",
    [
        Decimal("9223372036854775.807000001"),
        Decimal("-9223372036854775.809"),
        Decimal("1e19"),
        Decimal("1e2147483647"),
        Decimal("NaN"),
        Decimal("Infinity"),
        Decimal("-Infinity"),
    ],
)
def test_milli_value_rejects_what_int64_cannot_hold(value):
    with pytest.raises(quantity.InvalidQuantity):
        quantity.milli_value(value)


# --- properties --------------------------------------------------------------------------------

allowed_floats = st.floats(
    min_value=-LARGEST_ACCEPTED_FLOAT,
    max_value=LARGEST_ACCEPTED_FLOAT,
    allow_nan=False,
    allow_infinity=False,
)
# Plain floats cluster near the extremes; this adds every decade from 1e-12 to 1e15.
scaled_floats = st.builds(
    lambda mantissa, power: mantissa * 10.0**power,
    st.floats(min_value=-9.2, max_value=9.2, allow_nan=False),
    st.integers(min_value=-12, max_value=14),
)
any_allowed_float = st.one_of(allowed_floats, scaled_floats)


@given(any_allowed_float)
@example(0.1)
@example(1e-10)
@example(-1e-10)
@example(5e-324)
@example(LARGEST_ACCEPTED_FLOAT)
@example(-LARGEST_ACCEPTED_FLOAT)
def test_official_client_and_our_parser_read_back_the_rounded_decimal(x):
    text = quantity.format_quantity(x)
    expected = expected_decimal(x)
    assert client_parse_quantity(text) == expected
    assert quantity.parse_quantity(text) == expected


@given(any_allowed_float)
def test_output_is_canonical(x):
    text = quantity.format_quantity(x)
    match = CANONICAL_RE.fullmatch(text)
    assert match is not None, text
    mantissa, suffix = match.group(1), match.group(2) or ""
    if mantissa != "0" and suffix != "E":
        assert not mantissa.endswith("000"), text  # a larger suffix would have fit
    if mantissa == "0":
        assert text == "0"
    # Canonical strings are fixed points of parse-then-format.
    assert quantity.format_quantity(quantity.parse_quantity(text)) == text


@given(any_allowed_float)
def test_milli_value_is_the_ceiling_of_a_thousandfold(x):
    exact = Fraction(expected_decimal(x)) * 1000
    milli = quantity.milli_value(quantity.parse_quantity(quantity.format_quantity(x)))
    assert milli == math.ceil(exact)
    if x > 0:
        assert milli >= 1


@given(
    st.one_of(
        st.floats(min_value=SMALLEST_REJECTED_FLOAT),
        st.floats(max_value=-SMALLEST_REJECTED_FLOAT),
        st.sampled_from([math.nan, math.inf, -math.inf]),
    )
)
def test_out_of_range_and_non_finite_floats_raise(x):
    with pytest.raises(quantity.InvalidQuantity):
        quantity.format_quantity(x)


_CLIENT_SAFE_SUFFIXES = ["", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi"]


@given(
    sign=st.sampled_from(["", "+", "-"]),
    integer=st.from_regex(r"[0-9]{0,4}", fullmatch=True),
    fraction=st.from_regex(r"[0-9]{0,3}", fullmatch=True),
    suffix=st.sampled_from(_CLIENT_SAFE_SUFFIXES),
)
def test_parse_agrees_with_the_official_client_on_nano_exact_strings(
    sign, integer, fraction, suffix
):
    # With at most three fraction digits and a suffix of at least 10**0, every value lies on the
    # nano grid, so Go's rounding is a no-op and the client (which never rounds) must agree.
    if not integer and not fraction:
        integer = "0"
    text = f"{sign}{integer}.{fraction}{suffix}" if fraction else f"{sign}{integer}{suffix}"
    expected = client_parse_quantity(text)
    # Go caps binary-suffixed values at the int64 maximum (8200Pi); the client does not.
    assume(abs(expected) <= 2**63 - 1)
    assert quantity.parse_quantity(text) == expected


@settings(max_examples=2000)
@given(
    st.floats(allow_nan=False, allow_infinity=False, min_value=-9.1e15, max_value=9.1e15)
    | st.floats(min_value=1e-12, max_value=1e-6)
    | st.sampled_from([0.0, -0.0, 1e-9, 1.5e-9, 9.999999999e-10, 0.1, 2.5e-7, 1234567.0])
)
def test_float_fast_path_equals_the_decimal_path(value):
    exact = Decimal(repr(value)).quantize(Decimal("1e-9"), rounding=ROUND_UP)
    assert quantity._format_float(value) == quantity._canonical(exact)


@settings(max_examples=1000)
@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_whole_float_fast_path_equals_the_decimal_path(n):
    assert quantity.format_quantity(float(n)) == quantity._canonical(Decimal(n))


# -- format_quantities: the vectorized form equals format_quantity value for value ----------

near_the_nano_grid = st.builds(
    lambda nanos, nudge: nanos * 1e-9 + nudge,
    st.integers(min_value=1, max_value=10**15),
    st.sampled_from([0.0, 5e-324, 1e-18, -1e-18, 1e-16, -1e-16, 1e-12, 4e-10, 5e-10]),
)
"""Values at or a hair off a whole number of nanoseconds: where a float ceiling can go wrong."""

metric_like_floats = st.one_of(
    any_allowed_float,
    near_the_nano_grid,
    st.floats(min_value=1e-7, max_value=1e3, allow_nan=False),  # latencies in seconds
    st.integers(min_value=-(10**6), max_value=10**6).map(float),  # gauges
)


@settings(max_examples=300)
@given(st.lists(metric_like_floats, max_size=40))
def test_format_quantities_equals_format_quantity(values):
    assert quantity.format_quantities(values) == [quantity.format_quantity(v) for v in values]


@example(0.30000000000000004)  # repr has 17 digits: nanos 300000000.00000004 round up
@example(0.1)  # the float is a hair above 0.1, but repr says 0.1: 100m, not 100000001n
@example(1e-9)
@example(1.5e-9)
@example(2.5e-7)
@example(0.0)
@given(metric_like_floats)
def test_format_quantities_of_one_value(value):
    assert quantity.format_quantities([value]) == [quantity.format_quantity(value)]


def test_format_quantities_takes_its_exact_formatter_where_it_cannot_be_sure():
    seen = []

    def exact(value: float) -> str:
        seen.append(value)
        return quantity.format_quantity(value)

    texts = quantity.format_quantities([0.123456789123, 0.25, 3.0, 0.1, -0.5], exact)
    assert texts == ["123456790n", "250m", "3", "100m", "-500m"]
    assert seen == [0.25, 3.0, 0.1, -0.5], "the unambiguous value took the slow path"


def test_format_quantities_raises_as_format_quantity_does():
    with pytest.raises(quantity.InvalidQuantity):
        quantity.format_quantities([0.5, math.nan])
    with pytest.raises(quantity.InvalidQuantity):
        quantity.format_quantities([math.inf])
