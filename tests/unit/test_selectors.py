"""Tests for adapter.selectors against upstream apimachinery behaviour (labels/selector_test.go).

Tables marked "upstream" restate cases from selector_test.go; the rest pin behaviour read from
selector.go (the value-list state machine, int64 parsing, NUL as end of input).
"""

import doctest
import itertools
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapter import selectors
from adapter.selectors import EVERYTHING, InvalidSelector, Requirement, Selector, parse

# --- parsing: valid input -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        # upstream TestSelectorParse (good strings; String() drops the spaces)
        ("x=a,y=b,z=c", "x=a,y=b,z=c"),
        ("", ""),
        ("x!=a,y=b", "x!=a,y=b"),
        ("x=", "x="),
        ("x= ", "x="),
        ("x=,z= ", "x=,z="),
        ("x= ,z= ", "x=,z="),
        ("!x", "!x"),
        ("x>1", "x>1"),
        ("x>1,z<5", "x>1,z<5"),
        # upstream TestSetSelectorParser (valid rows)
        ("\rx", "x"),
        ("this-is-a-dns.domain.com/key-with-dash", "this-is-a-dns.domain.com/key-with-dash"),
        (
            "this-is-another-dns.domain.com/key-with-dash in (so,what)",
            "this-is-another-dns.domain.com/key-with-dash in (so,what)",
        ),
        (
            "0.1.2.domain/99 notin (10.10.100.1, tick.tack.clock)",
            "0.1.2.domain/99 notin (10.10.100.1,tick.tack.clock)",
        ),
        ("foo  in\t (abc)", "foo in (abc)"),
        ("x notin\n (abc)", "x notin (abc)"),
        ("x  notin\t\t\t(abc,def)", "x notin (abc,def)"),
        ("x in (abc,def)", "x in (abc,def)"),
        ("x in (abc,)", "x in (,abc)"),
        ("x in ()", "x in ()"),
        ("x notin (abc,,def),bar,z in (),w", "bar,w,x notin (,abc,def),z in ()"),
        ("x,y in (a)", "x,y in (a)"),
        ("x=a", "x=a"),
        ("x<7", "x<7"),
        ("x=a,y!=b,z in (h,i,j)", "x=a,y!=b,z in (h,i,j)"),
        ("x notin ( )", "x notin ()"),
        ("x notin (, a)", "x notin (,a)"),
        ("a ", "a"),
        ("a in (x,y,notin, z,in)", "a in (in,notin,x,y,z)"),
        # upstream TestSelectorMatches / TestDeterministicParse inputs
        ("notin=in", "notin=in"),
        ("x=a,a=x", "a=x,x=a"),
        # keywords are only operators where an operator is expected
        ("in in (in)", "in in (in)"),
        ("notin notin (notin)", "notin notin (notin)"),
        ("!in", "!in"),
        ("in", "in"),
        ("x=in", "x=in"),
        # operators and spacing
        ("x==a", "x==a"),
        ("x!=", "x!="),
        ("! x", "!x"),
        ("x\t=\ty", "x=y"),
        (" \t\r\n x \n", "x"),
        ("x in(a)", "x in (a)"),
        ("x>007", "x>007"),
        ("x<9223372036854775807", "x<9223372036854775807"),
        ("x>1,x<5", "x>1,x<5"),
        ("example.com/tier!=db", "example.com/tier!=db"),
        ("a,b,c", "a,b,c"),
        # sorting: by key, stable for repeated keys; values sorted and de-duplicated
        ("b=1,a=2", "a=2,b=1"),
        ("a=2,a=1", "a=2,a=1"),
        ("c,a!=1,b in (z,y)", "a!=1,b in (y,z),c"),
        ("x in (b,a,b)", "x in (a,b)"),
        # empty values in a set, following upstream's state machine
        ("x in (a,,b)", "x in (,a,b)"),
        ("x in (,)", "x in ()"),
        ("x in (,a)", "x in (,a)"),
        ("x in (,,a)", "x in (,a)"),
        ("x in (a,,,)", "x in (,a)"),
        ("x in (,,,)", "x in ()"),
        # deliberately more lenient than upstream, which rejects these two
        ("x in (a,,)", "x in (,a)"),
        ("x in (,,)", "x in ()"),
        # whitespace only
        ("   ", ""),
        ("\t\r\n", ""),
        # NUL ends the input (Go's lexer reads byte 0 as end of string)
        ("x=a \x00,garbage!!", "x=a"),
        ("x=a\x00,y", "x=a,y"),
        ("x,\x00y", "x,y"),
        ("x\x00 \x00y", "x"),
        ("x\x00", "x"),
        ("x=\x00a", "x=a"),
        ("\x00(((", ""),
    ],
)
def test_parse_valid_gives_canonical_string(text, canonical):
    assert str(parse(text)) == canonical


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x", [("x", "exists", ())]),
        ("!x", [("x", "!", ())]),
        ("x=", [("x", "=", ("",))]),
        ("x==a", [("x", "==", ("a",))]),
        ("x!=a", [("x", "!=", ("a",))]),
        ("x>1", [("x", ">", ("1",))]),
        ("x<7", [("x", "<", ("7",))]),
        ("x in ()", [("x", "in", ("",))]),
        ("x notin (, a)", [("x", "notin", ("", "a"))]),
        ("x in (b,a,b)", [("x", "in", ("a", "b"))]),
        (
            "x notin (abc,,def),bar,z in (),w",
            [
                ("bar", "exists", ()),
                ("w", "exists", ()),
                ("x", "notin", ("", "abc", "def")),
                ("z", "in", ("",)),
            ],
        ),
        ("in in (in)", [("in", "in", ("in",))]),
    ],
)
def test_parse_builds_requirements(text, expected):
    got = [(r.key, r.operator, r.values) for r in parse(text).requirements]
    assert got == expected


def test_parse_is_deterministic():
    """upstream TestDeterministicParse."""
    assert parse("x=a,a=x") == parse("a=x,x=a")


# --- parsing: invalid input -----------------------------------------------------------------

_REQ = "unable to parse requirement: "


@pytest.mark.parametrize(
    ("text", "fragment", "position"),
    [
        # upstream TestSelectorParse (bad strings)
        ("x=a||y=b", _REQ + "invalid label value 'a||y' for key 'x'", 2),
        ("x==a==b", "found '==', expected: ',' or 'end of string'", 4),
        ("!x=a", "found '=', expected: ',' or 'end of string'", 2),
        ("x<a", _REQ + "for '>', '<' operators, the value must be a 64-bit integer", 2),
        # upstream TestSetSelectorParser (invalid rows)
        ("x,,y", "found ',', expected: identifier after ','", 2),
        (",x,y", "found ',', expected: !, identifier, or 'end of string'", 0),
        ("x nott in (y)", _REQ + "found 'nott', expected: in, notin, =, ==, !=, >, <", 2),
        ("a in (xyz),", "found end of string, expected: identifier after ','", 11),
        ("a in (xyz)b notin ()", "found 'b', expected: ',' or 'end of string'", 10),
        ("a in (xyz abc)", _REQ + "found 'abc', expected: ',' or ')'", 10),
        ("a notin(", _REQ + "found end of string, expected: ',', ')' or identifier", 8),
        ("a (", _REQ + "found '(', expected: in, notin", 2),
        ("(", "found '(', expected: !, identifier, or 'end of string'", 0),
        ("x in (a", _REQ + "found end of string, expected: ',' or ')'", 7),
        ("x in (a,", _REQ + "found end of string, expected: ',', or identifier", 8),
        ("x in (=)", _REQ + "found '=', expected: ',', ')' or identifier", 6),
        ("x in a", _REQ + "found 'a', expected: '('", 5),
        ("x in (a,_b)", _REQ + "invalid label value '_b' for key 'x'", 8),
        # keys
        ("_x", _REQ + "invalid label key '_x'", 0),
        ("a/b/c=d", _REQ + "invalid label key 'a/b/c'", 0),
        ("Example.com/x", _REQ + "invalid label key 'Example.com/x': prefix part", 0),
        ("a" * 64, "name part must be no more than 63 characters", 0),
        ("x=1,_y", _REQ + "invalid label key '_y'", 4),
        # the key is checked as soon as it is read, before the rest of the requirement
        ("_x (", _REQ + "invalid label key '_x'", 0),
        ("_x in (a b)", _REQ + "invalid label key '_x'", 0),
        # only space, tab, CR and LF separate tokens; other blanks are part of a word
        ("x\x0b=a", _REQ + "invalid label key 'x\\x0b'", 0),
        ("x\x0c", _REQ + "invalid label key 'x\\x0c'", 0),
        ("\x0bx", _REQ + "invalid label key '\\x0bx'", 0),
        ("x=\u00a0", _REQ + "invalid label value '\\xa0'", 2),
        ("!", _REQ + "found end of string, expected: identifier", 1),
        ("!!x", _REQ + "found '!', expected: identifier", 1),
        ("!=x", "found '!=', expected: !, identifier, or 'end of string'", 0),
        ("x!", _REQ + "found '!', expected: in, notin", 1),
        ("=", "found '=', expected: !, identifier, or 'end of string'", 0),
        (")", "found ')', expected: !, identifier", 0),
        # exact values
        ("x=(a)", _REQ + "found '(', expected: identifier", 2),
        ("x=a b", "found 'b', expected: ',' or 'end of string'", 4),
        ("x=A-", _REQ + "invalid label value 'A-'", 2),
        ("x=é", _REQ + "invalid label value 'é'", 2),
        ("x=" + "a" * 64, "must be no more than 63 characters", 2),
        ("x===y", _REQ + "found '=', expected: identifier", 3),
        ("x = = y", _REQ + "found '=', expected: identifier", 4),
        # integer comparisons
        ("x>", _REQ + "for '>', '<' operators, the value must be a 64-bit integer, found ''", 2),
        ("x>,y", "the value must be a 64-bit integer, found ''", 2),
        ("x>=1", _REQ + "found '=', expected: identifier", 2),
        ("x>1.5", "must be a 64-bit integer, found '1.5'", 2),
        ("x<9223372036854775808", "must be a 64-bit integer", 2),
        ("x>-1", _REQ + "invalid label value '-1'", 2),
        ("x>+1", _REQ + "invalid label value '+1'", 2),
        # NUL where a token would start ends the input
        ("x, \x00y", "found end of string, expected: identifier after ','", 3),
        ("x\x00y", _REQ + "found 'y', expected: in, notin", 2),
    ],
)
def test_parse_invalid_names_problem_and_position(text, fragment, position):
    with pytest.raises(InvalidSelector) as caught:
        parse(text)
    error = caught.value
    assert fragment in str(error)
    assert error.position == position
    assert error.selector == text
    assert str(error).endswith(f" at position {position}")


def test_invalid_selector_message_is_one_line_with_position():
    with pytest.raises(InvalidSelector) as caught:
        parse("abc=d,!)")
    assert str(caught.value) == (
        "unable to parse requirement: found ')', expected: identifier at position 7"
    )
    assert isinstance(caught.value, ValueError)
    assert caught.value.problem == "unable to parse requirement: found ')', expected: identifier"


def test_invalid_selector_quotes_control_characters_on_one_line():
    with pytest.raises(InvalidSelector) as caught:
        parse("x=a\u2028b")
    assert len(str(caught.value).splitlines()) == 1
    assert "'a\\u2028b'" in str(caught.value)


def test_invalid_selector_shortens_huge_literals():
    with pytest.raises(InvalidSelector) as caught:
        parse("x=" + "y" * 10_000 + "!")
    assert len(str(caught.value)) < 300


# --- Requirement construction ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "operator", "values", "valid"),
    [
        # upstream TestRequirementConstructor
        ("x", "in", (), False),
        ("x", "notin", (), False),
        ("x", "in", ("foo",), True),
        ("x", "notin", ("foo",), True),
        ("x", "exists", (), True),
        ("x", "!", (), True),
        ("1foo", "in", ("bar",), True),
        ("1234", "in", ("bar",), True),
        ("y", ">", ("1",), True),
        ("z", "<", ("6",), True),
        ("foo", ">", ("bar",), False),
        ("barz", "<", ("blah",), False),
        ("a" * 254, "exists", (), False),
        # more of NewRequirement's rules
        ("", "exists", (), False),
        ("x", "exists", ("a",), False),
        ("x", "!", ("a",), False),
        ("x", "=", (), False),
        ("x", "==", ("a", "b"), False),
        ("x", "!=", ("",), True),
        ("x", ">", ("1", "2"), False),
        ("x", ">", (), False),
        ("x", ">", ("-1",), False),
        ("x", "<", ("9223372036854775807",), True),
        ("x", "<", ("9223372036854775808",), False),
        ("x", "gt", ("1",), False),
        ("x", "In", ("a",), False),
        ("x", "in", ("a", "-b"), False),
        ("x", "in", ("", "a"), True),
    ],
)
def test_requirement_constructor_validates(key, operator, values, valid):
    if valid:
        assert Requirement(key, operator, values).key == key
    else:
        with pytest.raises(InvalidSelector) as caught:
            Requirement(key, operator, values)
        assert caught.value.position is None
        assert "at position" not in str(caught.value)


def test_requirement_values_are_sorted_and_deduplicated():
    requirement = Requirement("x", "in", ["b", "a", "b"])  # type: ignore[arg-type]
    assert requirement.values == ("a", "b")
    assert requirement == Requirement("x", "in", ("a", "b"))
    assert hash(requirement) == hash(Requirement("x", "in", ("a", "b")))


def test_selector_sorts_requirements_by_key_stably():
    selector = Selector(
        (Requirement("b", "exists"), Requirement("a", "=", ("2",)), Requirement("a", "=", ("1",)))
    )
    assert [str(r) for r in selector.requirements] == ["a=2", "a=1", "b"]
    assert selector == parse("b,a=2,a=1")


# --- canonical text -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requirements", "text"),
    [
        # upstream TestToString
        (
            [("x", "in", ("abc", "def")), ("y", "notin", ("jkl",)), ("z", "exists", ())],
            "x in (abc,def),y notin (jkl),z",
        ),
        (
            [("x", "notin", ("abc", "def")), ("y", "!=", ("jkl",)), ("z", "!", ())],
            "x notin (abc,def),y!=jkl,!z",
        ),
        (
            [("x", "notin", ("abc",)), ("y", "in", ("jkl", "mno")), ("z", "notin", ("",))],
            "x notin (abc),y in (jkl,mno),z notin ()",
        ),
        (
            [("x", "=", ("abc",)), ("y", "==", ("jkl",)), ("z", "!=", ("a",)), ("z", "exists", ())],
            "x=abc,y==jkl,z!=a,z",
        ),
        ([("x", ">", ("2",)), ("y", "<", ("8",)), ("z", "exists", ())], "x>2,y<8,z"),
        # ours
        ([("x", "in", ("def", "abc", ""))], "x in (,abc,def)"),
        ([("x", "=", ("",))], "x="),
        ([], ""),
    ],
)
def test_str_is_canonical(requirements, text):
    selector = Selector(tuple(Requirement(*parts) for parts in requirements))
    assert str(selector) == text


def test_requirement_str():
    requirement = Requirement("example.com/tier", "notin", ("b", "a"))
    assert str(requirement) == "example.com/tier notin (a,b)"


# --- matching -------------------------------------------------------------------------------

_FOO_BAZ = {"foo": "bar", "baz": "blah"}


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        # upstream TestSelectorMatches
        ("", {"x": "y"}, True),
        ("x=y", {"x": "y"}, True),
        ("x=y,z=w", {"x": "y", "z": "w"}, True),
        ("x!=y,z!=w", {"x": "z", "z": "a"}, True),
        ("notin=in", {"notin": "in"}, True),
        ("x", {"x": "z"}, True),
        ("!x", {"y": "z"}, True),
        ("x>1", {"x": "2"}, True),
        ("x<1", {"x": "0"}, True),
        ("x=z", {}, False),
        ("x=y", {"x": "z"}, False),
        ("x=y,z=w", {"x": "w", "z": "w"}, False),
        ("x!=y,z!=w", {"x": "z", "z": "w"}, False),
        ("x", {"y": "z"}, False),
        ("!x", {"x": "z"}, False),
        ("x>1", {"x": "0"}, False),
        ("x<1", {"x": "2"}, False),
        ("foo=bar", _FOO_BAZ, True),
        ("baz=blah", _FOO_BAZ, True),
        ("foo=bar,baz=blah", _FOO_BAZ, True),
        ("foo=blah", _FOO_BAZ, False),
        ("baz=bar", _FOO_BAZ, False),
        ("foo=bar,foobar=bar,baz=blah", _FOO_BAZ, False),
        # upstream TestRequirementSelectorMatching
        ("x in (foo),y notin (alpha)", {"x": "foo", "y": "baz"}, True),
        ("x in (foo),y in (alpha)", {"x": "foo", "y": "baz"}, False),
        ("x notin (),y", {"y": ""}, True),
        ("!x,y", {"y": ""}, True),
        ("x notin (),!y", {"y": ""}, False),
        ("x in ()", {"y": "baz"}, False),
        ("z>1", {"z": "2"}, True),
        ("z>1", {"z": "v2"}, False),
        # empty values
        ("", {}, True),
        ("x=", {"x": ""}, True),
        ("x=", {}, False),
        ("x==", {"x": "a"}, False),
        ("x!=", {}, True),
        ("x!=", {"x": ""}, False),
        ("x!=", {"x": "a"}, True),
        ("x in ()", {"x": ""}, True),
        ("x in (a,)", {"x": ""}, True),
        ("x in (a,)", {"x": "a"}, True),
        ("x in (a,)", {"x": "b"}, False),
        # sets and absence
        ("x in (a,b)", {"x": "b"}, True),
        ("x in (a,b)", {"x": "c"}, False),
        ("x in (a,b)", {}, False),
        ("x notin (a,b)", {}, True),
        ("x notin (a,b)", {"x": "a"}, False),
        ("x notin (a,b)", {"x": "c"}, True),
        ("x=a", {"x": "A"}, False),
        ("x,!x", {}, False),
        ("x,!x", {"x": "1"}, False),
        ("a=1,a=2", {"a": "1"}, False),
        ("example.com/tier=web", {"example.com/tier": "web"}, True),
        ("example.com/tier=web", {"tier": "web"}, False),
        # integer comparisons: key present, value a Go int64, strict
        ("x>1", {}, False),
        ("x<1", {}, False),
        ("x>1", {"x": "1"}, False),
        ("x<1", {"x": "1"}, False),
        ("x>1", {"x": "+2"}, True),
        ("x<0", {"x": "-1"}, True),
        ("x>1", {"x": "007"}, True),
        ("x>007", {"x": "8"}, True),
        ("x>1", {"x": "0" * 5000 + "2"}, True),
        ("x>1", {"x": "9" * 5000}, False),
        ("x>1", {"x": ""}, False),
        ("x>1", {"x": "+"}, False),
        ("x>1", {"x": " 2"}, False),
        ("x>1", {"x": "2 "}, False),
        ("x>1", {"x": "2\n"}, False),
        ("x>1", {"x": "1_0"}, False),
        ("x>1", {"x": "2.0"}, False),
        ("x>1", {"x": "\u0663"}, False),  # ARABIC-INDIC DIGIT THREE
        ("x>1", {"x": "++2"}, False),
        ("x>9223372036854775806", {"x": "9223372036854775807"}, True),
        ("x>1", {"x": "9223372036854775808"}, False),
        ("x<1", {"x": "-9223372036854775808"}, True),
        ("x<1", {"x": "-9223372036854775809"}, False),
        ("x>1,x<5", {"x": "3"}, True),
        ("x>1,x<5", {"x": "5"}, False),
    ],
)
def test_matches(text, labels, expected):
    selector = parse(text)
    assert selector.matches(labels) is expected
    if len(selector.requirements) == 1:
        assert selector.requirements[0].matches(labels) is expected


def test_everything():
    """upstream TestEverything, plus the empty-selector contract."""
    assert EVERYTHING.matches({"x": "y"})
    assert EVERYTHING.matches({})
    assert EVERYTHING.is_empty()
    assert str(EVERYTHING) == ""
    assert parse("") == EVERYTHING
    assert parse(" \t") == EVERYTHING
    assert not parse("x").is_empty()
    assert not parse("!x").is_empty()


# --- LabelSelector JSON ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", None),
        ("a=b", {"matchLabels": {"a": "b"}}),
        ("a==b", {"matchLabels": {"a": "b"}}),
        ("a=", {"matchLabels": {"a": ""}}),
        ("a=b,c=d", {"matchLabels": {"a": "b", "c": "d"}}),
        (
            "a in (y,x)",
            {"matchExpressions": [{"key": "a", "operator": "In", "values": ["x", "y"]}]},
        ),
        ("a notin (x)", {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["x"]}]}),
        ("a!=x", {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["x"]}]}),
        ("a", {"matchExpressions": [{"key": "a", "operator": "Exists"}]}),
        ("!a", {"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}),
        ("a>5", {"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["5"]}]}),
        ("a<5", {"matchExpressions": [{"key": "a", "operator": "Lt", "values": ["5"]}]}),
        ("a in ()", {"matchExpressions": [{"key": "a", "operator": "In", "values": [""]}]}),
        (
            "app=web,tier in (a,b),!canary",
            {
                "matchLabels": {"app": "web"},
                "matchExpressions": [
                    {"key": "canary", "operator": "DoesNotExist"},
                    {"key": "tier", "operator": "In", "values": ["a", "b"]},
                ],
            },
        ),
        (
            "a=1,a=2",
            {
                "matchLabels": {"a": "1"},
                "matchExpressions": [{"key": "a", "operator": "In", "values": ["2"]}],
            },
        ),
    ],
)
def test_to_label_selector(text, expected):
    assert parse(text).to_label_selector() == expected


# --- properties -----------------------------------------------------------------------------

_KEY_POOL = ["a", "b", "in", "notin", "example.com/tier", "x.y-z/A_b", "k8s.io/Name.1"]
_VALUE_POOL = ["", "a", "b", "in", "notin", "web", "0", "1", "2", "007", "X_y.z-9"]
_LABEL_VALUE_POOL = [
    *_VALUE_POOL,
    "-3",
    "+4",
    " 5",
    "5\n",
    "x1",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
]

_names = st.from_regex(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?", fullmatch=True)
_prefixes = st.from_regex(
    r"[a-z0-9]([-a-z0-9]{0,8}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,8}[a-z0-9])?){0,3}", fullmatch=True
)
_keys = st.sampled_from(_KEY_POOL) | _names | st.builds("{}/{}".format, _prefixes, _names)
_values = st.sampled_from(_VALUE_POOL) | st.just("") | _names
_integers = st.integers(0, 2**63 - 1).map(str) | st.sampled_from(["0", "007", str(2**63 - 1)])


@st.composite
def _requirement_parts(draw):
    key = draw(_keys)
    operator = draw(st.sampled_from(sorted(selectors.OPERATORS)))
    if operator in ("exists", "!"):
        values = []
    elif operator in ("in", "notin"):
        values = draw(st.lists(_values, min_size=1, max_size=4))
    elif operator in (">", "<"):
        values = [draw(_integers)]
    else:
        values = [draw(_values)]
    return key, operator, values


_parts_lists = st.lists(_requirement_parts(), max_size=5)
_label_sets = st.dictionaries(
    st.sampled_from(_KEY_POOL) | _keys,
    st.sampled_from(_LABEL_VALUE_POOL) | st.text(max_size=4),
    max_size=6,
)
_INT_RE = re.compile(r"[+-]?[0-9]+")


def _reference_int(text):
    if _INT_RE.fullmatch(text) is None:
        return None
    number = int(text)
    return number if -(2**63) <= number < 2**63 else None


def _reference_requirement(key, operator, values, labels):
    """The matching rules as the upstream docs state them, written out plainly."""
    present = key in labels
    if operator in ("=", "==", "in"):
        return present and labels[key] in values
    if operator in ("!=", "notin"):
        return not present or labels[key] not in values
    if operator == "exists":
        return present
    if operator == "!":
        return not present
    if not present:
        return False
    number = _reference_int(labels[key])
    if number is None:
        return False
    return number > int(values[0]) if operator == ">" else number < int(values[0])


def _selector_of(parts_list):
    return Selector(tuple(Requirement(key, op, tuple(values)) for key, op, values in parts_list))


@given(_parts_lists, st.lists(_label_sets, max_size=5))
def test_text_round_trip_and_matching_agree_with_reference(parts_list, label_sets):
    selector = _selector_of(parts_list)
    assert parse(str(selector)) == selector
    for labels in label_sets:
        expected = all(_reference_requirement(*parts, labels) for parts in parts_list)
        assert selector.matches(labels) is expected


def _reference_label_selector(json, labels):
    """Evaluate LabelSelector JSON as the API server does (Gt/Lt as for node selectors)."""
    for key, value in json.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    operators = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    operators |= {"Gt": ">", "Lt": "<"}
    for item in json.get("matchExpressions", []):
        operator = operators[item["operator"]]
        if not _reference_requirement(item["key"], operator, item.get("values", []), labels):
            return False
    return True


@given(_parts_lists, st.lists(_label_sets, max_size=5))
def test_label_selector_json_means_the_same(parts_list, label_sets):
    selector = _selector_of(parts_list)
    json = selector.to_label_selector()
    assert (json is None) == selector.is_empty()
    for labels in label_sets:
        assert _reference_label_selector(json or {}, labels) is selector.matches(labels)


_GRAMMAR_CHARACTERS = "ab9/.-_=!<>(), \t\r\n\x00inot"


@given(st.text() | st.text(alphabet=_GRAMMAR_CHARACTERS, max_size=40))
def test_arbitrary_text_parses_or_raises_invalid_selector(text):
    try:
        selector = parse(text)
    except InvalidSelector as error:
        assert error.selector == text
        assert error.position is not None
        assert 0 <= error.position <= len(text)
        assert len(str(error).splitlines()) == 1
    else:
        assert parse(str(selector)) == selector


_whitespace = st.text(alphabet=" \t\r\n", max_size=3)
_some_whitespace = st.text(alphabet=" \t\r\n", min_size=1, max_size=3)
_SPECIAL = set("=!(),<>")


def _tokens(key, operator, values):
    """Tokens of one requirement, with set values in canonical order (``""`` first, once)."""
    if operator == "exists":
        return [key]
    if operator == "!":
        return ["!", key]
    if operator in ("in", "notin"):
        items = sorted(set(values))
        tokens = [key, operator, "("]
        for index, value in enumerate(items):
            if index:
                tokens.append(",")
            if value:
                tokens.append(value)
        return [*tokens, ")"]
    return [key, operator] + ([values[0]] if values[0] else [])


@given(_parts_lists, st.data())
def test_whitespace_between_tokens_is_insignificant(parts_list, data):
    tokens = []
    for index, parts in enumerate(parts_list):
        if index:
            tokens.append(",")
        tokens.extend(_tokens(*parts))
    text = data.draw(_whitespace)
    for previous, token in itertools.pairwise(tokens):
        # Two words need at least one blank between them, or they would fuse into one.
        both_words = previous[0] not in _SPECIAL and token[0] not in _SPECIAL
        gap = data.draw(_some_whitespace if both_words else _whitespace)
        text += previous + gap
    if tokens:
        text += tokens[-1]
    text += data.draw(_whitespace)
    assert parse(text) == _selector_of(parts_list)


def test_docstring_examples():
    failed, attempted = doctest.testmod(selectors)
    assert (failed, attempted > 0) == (0, True)
