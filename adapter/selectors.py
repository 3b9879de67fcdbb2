"""Kubernetes label selectors: parse the text form, match label sets, print canonically.

A pure core that behaves like k8s.io/apimachinery/pkg/labels (``Parse``, ``NewRequirement``,
``Requirement.Matches``, ``String``), so an HPA or ``kubectl get --raw`` selector means the same
thing here as in the API server. It imports only the standard library and
:mod:`adapter.names`; it does no I/O and keeps no state.

Grammar (whitespace -- space, tab, CR, LF -- is allowed between any two tokens)::

    selector     ::= "" | requirement ("," requirement)*
    requirement  ::= "!" KEY | KEY | KEY op VALUE? | KEY ("in" | "notin") "(" values ")"
    op           ::= "=" | "==" | "!=" | ">" | "<"
    values       ::= a comma-separated list in which empty items mean the value ""

Upstream behaviours kept on purpose, because a selector must mean the same thing as in the
API server:

* ``a=`` and ``a in ()`` mean the value ``""``; ``x in (a,,b)`` is ``{"", "a", "b"}``. The value
  list follows upstream's state machine, with one deliberate leniency: upstream rejects
  ``(a,,)`` and ``(,,)`` (it wants a value after ``,,``); we read them as ``{"a", ""}``
  and ``{""}``.
* ``in`` and ``notin`` are keywords only where an operator is expected; elsewhere they are
  ordinary keys or values (``in in (notin)`` is valid).
* ``>`` and ``<`` take one base-10 int64 that is also a valid label value (so no sign); a label
  value that does not parse as an int64 never matches them.
* Go's lexer uses byte 0 as its end-of-input sentinel, so a NUL character where a token
  would start ends the input (``"a=b \\x00junk("`` parses as ``a=b``), and a NUL right
  after a token is skipped (``"a\\x00,b"`` parses as ``a,b``).

Error positions are 0-based character offsets into the selector text (Go reports none).
Only the first problem found is reported, where upstream aggregates all of a requirement's.

Example::

    >>> sel = parse("tier in (web, api), !canary")
    >>> str(sel)
    '!canary,tier in (api,web)'
    >>> sel.matches({"tier": "web"}), sel.matches({"tier": "web", "canary": "1"})
    (True, False)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, TypedDict

from adapter import names

__all__ = [
    "EVERYTHING",
    "OPERATORS",
    "InvalidSelector",
    "LabelSelector",
    "LabelSelectorRequirement",
    "Requirement",
    "Selector",
    "parse",
]

EQUALS = "="
DOUBLE_EQUALS = "=="
NOT_EQUALS = "!="
IN = "in"
NOT_IN = "notin"
EXISTS = "exists"
DOES_NOT_EXIST = "!"
GREATER_THAN = ">"
LESS_THAN = "<"

OPERATORS = frozenset(
    {
        EQUALS,
        DOUBLE_EQUALS,
        NOT_EQUALS,
        IN,
        NOT_IN,
        EXISTS,
        DOES_NOT_EXIST,
        GREATER_THAN,
        LESS_THAN,
    }
)
"""Every value :attr:`Requirement.operator` may take."""

_EXACT_OPERATORS = frozenset({EQUALS, DOUBLE_EQUALS, NOT_EQUALS})
_SET_OPERATORS = frozenset({IN, NOT_IN})
_UNARY_OPERATORS = frozenset({EXISTS, DOES_NOT_EXIST})
_NUMERIC_OPERATORS = frozenset({GREATER_THAN, LESS_THAN})

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_INT64_MAX_DIGITS = 19


class InvalidSelector(ValueError):
    """A label selector (or a requirement built by hand) that Kubernetes would reject.

    ``selector`` is the offending text (for a hand-built :class:`Requirement`, its best-effort
    rendering); ``position`` is the 0-based character offset of the offending token, or
    ``None`` when no single place is to blame. ``str()`` is one line, e.g.
    ``"unable to parse requirement: found ')', expected: identifier at position 7"``.
    """

    def __init__(self, problem: str, *, selector: str, position: int | None = None) -> None:
        self.problem = problem
        self.selector = selector
        self.position = position
        where = "" if position is None else f" at position {position}"
        super().__init__(problem + where)


def _parse_int64(text: str) -> int | None:
    """Parse like Go's ``strconv.ParseInt(text, 10, 64)``: optional sign, ASCII digits only.

    Python's ``int()`` is laxer (whitespace, ``_``, non-ASCII digits) and refuses more than
    4300 digits, so the digits are checked by hand and leading zeros dropped first.
    """
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not (digits.isascii() and digits.isdigit()):
        return None
    significant = digits.lstrip("0")
    if len(significant) > _INT64_MAX_DIGITS:
        return None
    number = int(significant) if significant else 0
    if text[0] == "-":
        number = -number
    return number if _INT64_MIN <= number <= _INT64_MAX else None


def _requirement_problem(
    key: str, operator: str, values: Sequence[str]
) -> tuple[str, int | None] | None:
    """First reason ``NewRequirement`` would refuse these parts, in upstream's order.

    Returns ``(message, index)`` where ``index`` points into ``values`` when one value is to
    blame, or ``None`` when the whole requirement is (or the key).
    """
    key_error = names.label_key_error(key)
    if key_error is not None:
        return f"invalid label key {_quote(key)}: {key_error}", None
    if operator in _SET_OPERATORS:
        if not values:
            return "for 'in', 'notin' operators, values set can't be empty", None
    elif operator in _EXACT_OPERATORS:
        if len(values) != 1:
            return "exact-match compatibility requires one single value", None
    elif operator in _UNARY_OPERATORS:
        if values:
            return "values set must be empty for exists and does not exist", None
    elif operator in _NUMERIC_OPERATORS:
        if len(values) != 1:
            return "for '>', '<' operators, exactly one value is required", None
        for index, value in enumerate(values):
            if _parse_int64(value) is None:
                return (
                    f"for '>', '<' operators, the value must be a 64-bit integer, "
                    f"found {_quote(value)}"
                ), index
    else:
        expected = ", ".join(sorted(OPERATORS))
        return f"unsupported operator {_quote(operator)}, expected one of: {expected}", None
    for index, value in enumerate(values):
        value_error = names.label_value_error(value)
        if value_error is not None:
            return (
                f"invalid label value {_quote(value)} for key {_quote(key)}: {value_error}",
                index,
            )
    return None


_Matcher = Callable[[Mapping[str, str]], bool]


def _compile_matcher(key: str, operator: str, values: tuple[str, ...]) -> _Matcher:
    """Build the match function once, so matching a pod is a dict lookup and a compare.

    ``labels.get(key)`` is ``None`` for an absent key, which is never equal to nor a member of
    a set of strings: that gives upstream's "absent fails ``=``/``in``, passes ``!=``/
    ``notin``" without a second lookup.
    """
    if operator in _UNARY_OPERATORS:
        if operator == EXISTS:
            return lambda labels: key in labels
        return lambda labels: key not in labels
    if operator in _NUMERIC_OPERATORS:
        bound = _parse_int64(values[0])
        assert bound is not None  # guaranteed by _requirement_problem
        greater = operator == GREATER_THAN

        def compare(labels: Mapping[str, str]) -> bool:
            value = labels.get(key)
            if value is None:
                return False
            number = _parse_int64(value)
            if number is None:
                return False
            return number > bound if greater else number < bound

        return compare
    negate = operator in (NOT_EQUALS, NOT_IN)
    if len(values) == 1:
        (expected,) = values
        if negate:
            return lambda labels: labels.get(key) != expected
        return lambda labels: labels.get(key) == expected
    allowed = frozenset(values)
    if negate:
        return lambda labels: labels.get(key) not in allowed
    return lambda labels: labels.get(key) in allowed


def _render(key: str, operator: str, values: Sequence[str]) -> str:
    """Text form of one requirement, as upstream ``Requirement.String``."""
    if operator == EXISTS:
        return key
    if operator == DOES_NOT_EXIST:
        return "!" + key
    joined = ",".join(values)
    if operator in _SET_OPERATORS:
        return f"{key} {operator} ({joined})"
    return f"{key}{operator}{joined}"


@dataclass(frozen=True)
class Requirement:
    """One condition of a selector: a label key, an operator and its values.

    Construction validates like upstream ``NewRequirement`` and raises :class:`InvalidSelector`
    (with ``position=None``); ``values`` is stored sorted and de-duplicated, as upstream's
    parser hands it over, so equal requirements compare and hash equal.

    >>> Requirement("tier", "in", ("web", "api", "web")).values
    ('api', 'web')
    >>> Requirement("tier", "exists").matches({"tier": ""})
    True
    """

    key: str
    operator: str
    """One of :data:`OPERATORS`: ``= == != in notin exists ! > <``."""
    values: tuple[str, ...] = ()
    _matcher: _Matcher = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        raw = tuple(self.values)
        problem = _requirement_problem(self.key, self.operator, raw)
        if problem is not None:
            text = _render(self.key, self.operator, raw)
            raise InvalidSelector(problem[0], selector=text, position=None)
        normalized = tuple(sorted(set(raw)))
        object.__setattr__(self, "values", normalized)
        object.__setattr__(self, "_matcher", _compile_matcher(self.key, self.operator, normalized))

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether a pod's labels satisfy this requirement (upstream ``Requirement.Matches``).

        ``=``, ``==`` and ``in`` need the key present with a listed value; ``!=`` and
        ``notin`` pass when the key is absent or its value is not listed; ``>`` and ``<``
        need the key present with an int64 value strictly beyond the bound.
        """
        return self._matcher(labels)

    def __str__(self) -> str:
        return _render(self.key, self.operator, self.values)


class LabelSelectorRequirement(TypedDict, total=False):
    """JSON shape of a ``matchExpressions`` item (``values`` absent for Exists/DoesNotExist)."""

    key: str
    operator: str
    values: list[str]


class LabelSelector(TypedDict, total=False):
    """JSON shape of a Kubernetes ``LabelSelector``; empty parts are left out."""

    matchLabels: dict[str, str]
    matchExpressions: list[LabelSelectorRequirement]


_EXPRESSION_OPERATORS = {
    IN: "In",
    NOT_IN: "NotIn",
    NOT_EQUALS: "NotIn",
    EXISTS: "Exists",
    DOES_NOT_EXIST: "DoesNotExist",
    GREATER_THAN: "Gt",
    LESS_THAN: "Lt",
}


@dataclass(frozen=True)
class Selector:
    """A conjunction of requirements; the empty selector matches every label set.

    Requirements are kept sorted by key (stable for equal keys), as upstream's parser sorts
    them, so ``str()`` is canonical and ``parse(str(s)) == s``. Instances are immutable,
    hashable and safe to share between tasks and threads.
    """

    requirements: tuple[Requirement, ...] = ()
    _matchers: tuple[_Matcher, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.requirements, key=lambda r: r.key))
        object.__setattr__(self, "requirements", ordered)
        object.__setattr__(self, "_matchers", tuple(r._matcher for r in ordered))

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether every requirement holds for ``labels`` (cheap: meant for per-pod loops)."""
        # An explicit loop: about twice as fast as all() over a generator for short tuples.
        for matcher in self._matchers:  # noqa: SIM110
            if not matcher(labels):
                return False
        return True

    def is_empty(self) -> bool:
        """Whether this selector places no restriction (it then matches everything)."""
        return not self.requirements

    def to_label_selector(self) -> LabelSelector | None:
        """The ``LabelSelector`` JSON to echo in API responses; ``None`` for the empty selector.

        ``=``/``==`` go to ``matchLabels``; everything else becomes a ``matchExpressions``
        item (``!=`` as ``NotIn`` with one value, ``>``/``<`` as ``Gt``/``Lt``). When a key
        already has a ``matchLabels`` entry, a second ``=`` on it is written as ``In`` so the
        echo keeps meaning "both must hold" instead of silently overwriting.

        >>> echo = parse("app=web,tier!=db").to_label_selector()
        >>> echo["matchLabels"], echo["matchExpressions"]
        ({'app': 'web'}, [{'key': 'tier', 'operator': 'NotIn', 'values': ['db']}])
        """
        if not self.requirements:
            return None
        match_labels: dict[str, str] = {}
        expressions: list[LabelSelectorRequirement] = []
        for requirement in self.requirements:
            operator = requirement.operator
            if operator in (EQUALS, DOUBLE_EQUALS) and requirement.key not in match_labels:
                match_labels[requirement.key] = requirement.values[0]
                continue
            expression: LabelSelectorRequirement = {
                "key": requirement.key,
                "operator": _EXPRESSION_OPERATORS.get(operator, "In"),
            }
            if requirement.values:
                expression["values"] = list(requirement.values)
            expressions.append(expression)
        result: LabelSelector = {}
        if match_labels:
            result["matchLabels"] = match_labels
        if expressions:
            result["matchExpressions"] = expressions
        return result

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


EVERYTHING = Selector()
"""The empty selector: matches every label set; what ``parse("")`` returns."""


def parse(text: str) -> Selector:
    """Parse a label selector such as ``"app=web,tier in (a,b),!canary"``.

    The empty string (or only whitespace) is :data:`EVERYTHING`. Raises
    :class:`InvalidSelector` naming the first problem and its position; never raises
    anything else, whatever the input.

    >>> str(parse("b>1, a"))
    'a,b>1'
    >>> parse("a in (x,)").requirements[0].values
    ('', 'x')
    """
    requirements = _Parser(text).parse()
    if not requirements:
        return EVERYTHING
    return Selector(tuple(requirements))


# --- lexer -------------------------------------------------------------------------------

_END = "end of string"
_WORD = "identifier"
_WHITESPACE_RE = re.compile(r"[ \t\r\n]*")
# Anything that is not whitespace, an operator character or NUL belongs to a word. Keep this
# the exact complement of _WHITESPACE_RE, _SPECIAL and _NUL, or _tokenize stops advancing.
_WORD_RE = re.compile(r"[^ \t\r\n=!(),<>\x00]+")
_SPECIAL = frozenset("=!(),<>")
_TWO_CHARACTER_TOKENS = frozenset({"!=", "=="})
_NUL = "\x00"
_MAX_QUOTED = 64


class _Token(NamedTuple):
    kind: str
    """``_WORD``, ``_END`` or the operator/punctuation text itself."""
    text: str
    position: int


def _quote(text: str) -> str:
    """Quote user text for a one-line message: escaped, and cut short if huge."""
    if len(text) > _MAX_QUOTED:
        return repr(text[:_MAX_QUOTED]) + "..."
    return repr(text)


def _describe(token: _Token) -> str:
    return _END if token.kind == _END else _quote(token.text)


def _match_end(pattern: re.Pattern[str], text: str, position: int) -> int:
    match = pattern.match(text, position)
    return position if match is None else match.end()


def _tokenize(text: str) -> list[_Token]:
    """Split ``text`` into tokens, ending with one ``_END`` token.

    Mirrors upstream's ``Lexer``: words run until whitespace or an operator character;
    ``!=`` and ``==`` are the only two-character tokens; a NUL where a token would start ends
    the input, and a NUL right after a token is dropped (Go reads it as end and moves on).
    """
    tokens = []
    position = 0
    length = len(text)
    while True:
        position = _match_end(_WHITESPACE_RE, text, position)
        if position >= length or text[position] == _NUL:
            tokens.append(_Token(_END, "", position))
            return tokens
        start = position
        if text[position] in _SPECIAL:
            width = 2 if text[position : position + 2] in _TWO_CHARACTER_TOKENS else 1
            position += width
            kind = text[start:position]
        else:
            position = _match_end(_WORD_RE, text, position)
            kind = _WORD
        tokens.append(_Token(kind, text[start:position], start))
        if position < length and text[position] == _NUL:
            position += 1


# --- parser ------------------------------------------------------------------------------

_BINARY_OPERATOR_TOKENS = frozenset({EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GREATER_THAN, LESS_THAN})
_KEYWORD_OPERATORS = frozenset({IN, NOT_IN})
_REQUIREMENT_START = frozenset({_WORD, "!"})


class _Value(NamedTuple):
    text: str
    position: int


class _Parser:
    """Recursive descent over the token list, one method per upstream ``parse*`` function.

    Messages follow upstream's wording; errors inside a requirement get upstream's
    ``"unable to parse requirement: "`` prefix.
    """

    def __init__(self, text: str) -> None:
        self._text = text
        self._tokens = _tokenize(text)
        self._index = 0

    def _peek(self) -> _Token:
        return self._tokens[self._index]

    def _next(self) -> _Token:
        token = self._tokens[self._index]
        if token.kind != _END:
            self._index += 1
        return token

    def _fail(self, problem: str, position: int, *, in_requirement: bool = True) -> InvalidSelector:
        if in_requirement:
            problem = "unable to parse requirement: " + problem
        return InvalidSelector(problem, selector=self._text, position=position)

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        token = self._peek()
        if token.kind == _END:
            return requirements
        if token.kind not in _REQUIREMENT_START:
            raise self._fail(
                f"found {_describe(token)}, expected: !, identifier, or 'end of string'",
                token.position,
                in_requirement=False,
            )
        while True:
            requirements.append(self._requirement())
            token = self._next()
            if token.kind == _END:
                return requirements
            if token.kind != ",":
                raise self._fail(
                    f"found {_describe(token)}, expected: ',' or 'end of string'",
                    token.position,
                    in_requirement=False,
                )
            following = self._peek()
            if following.kind not in _REQUIREMENT_START:
                raise self._fail(
                    f"found {_describe(following)}, expected: identifier after ','",
                    following.position,
                    in_requirement=False,
                )

    def _requirement(self) -> Requirement:
        key_token, operator = self._key_and_inferred_operator()
        values: list[_Value] = []
        if operator is None:
            operator = self._operator()
            values = self._value_set() if operator in _SET_OPERATORS else [self._exact_value()]
        texts = [value.text for value in values]
        problem = _requirement_problem(key_token.text, operator, texts)
        if problem is not None:
            message, index = problem
            position = key_token.position if index is None else values[index].position
            raise self._fail(message, position)
        return Requirement(key_token.text, operator, tuple(texts))

    def _key_and_inferred_operator(self) -> tuple[_Token, str | None]:
        """Read ``[!]KEY``; the operator is known already for ``!KEY`` and a bare ``KEY``."""
        token = self._next()
        negated = token.kind == "!"
        if negated:
            token = self._next()
        if token.kind != _WORD:
            raise self._fail(f"found {_describe(token)}, expected: identifier", token.position)
        key_error = names.label_key_error(token.text)
        if key_error is not None:
            raise self._fail(f"invalid label key {_quote(token.text)}: {key_error}", token.position)
        if negated:
            return token, DOES_NOT_EXIST
        if self._peek().kind in (_END, ","):
            return token, EXISTS
        return token, None

    def _operator(self) -> str:
        token = self._next()
        if token.kind in _BINARY_OPERATOR_TOKENS:
            return token.kind
        if token.kind == _WORD and token.text in _KEYWORD_OPERATORS:
            return token.text
        raise self._fail(
            f"found {_describe(token)}, expected: in, notin, =, ==, !=, >, <", token.position
        )

    def _value_set(self) -> list[_Value]:
        token = self._next()
        if token.kind != "(":
            raise self._fail(f"found {_describe(token)}, expected: '('", token.position)
        token = self._peek()
        if token.kind == ")":
            self._next()
            return [_Value("", token.position)]
        if token.kind not in (_WORD, ","):
            raise self._fail(
                f"found {_describe(token)}, expected: ',', ')' or identifier", token.position
            )
        return self._value_list()

    def _value_list(self) -> list[_Value]:
        """Read comma-separated, possibly empty values up to and including ``)``.

        Upstream's ``parseIdentifiersList`` state machine (an empty item is ``""``), with one
        deliberate difference: upstream requires a value after ``,,`` and so rejects ``(a,,)``;
        here ``(a,,)`` is ``{"a", ""}``.
        """
        values: list[_Value] = []
        while True:
            token = self._next()
            if token.kind == _WORD:
                values.append(_Value(token.text, token.position))
                following = self._peek()
                if following.kind == ",":
                    continue
                if following.kind == ")":
                    self._next()
                    return values
                raise self._fail(
                    f"found {_describe(following)}, expected: ',' or ')'", following.position
                )
            if token.kind != ",":
                raise self._fail(
                    f"found {_describe(token)}, expected: ',', or identifier", token.position
                )
            if not values:
                values.append(_Value("", token.position))
            following = self._peek()
            if following.kind == ")":
                self._next()
                values.append(_Value("", following.position))
                return values
            if following.kind == ",":
                self._next()
                values.append(_Value("", following.position))
                if self._peek().kind == ")":
                    # Upstream's state machine wants a value here and rejects "(a,,)"; we read
                    # it as {"a", ""}, as the project's contract asks (a strict superset).
                    self._next()
                    return values

    def _exact_value(self) -> _Value:
        token = self._peek()
        if token.kind in (_END, ","):
            return _Value("", token.position)
        self._next()
        if token.kind != _WORD:
            raise self._fail(f"found {_describe(token)}, expected: identifier", token.position)
        return _Value(token.text, token.position)
