"""The run list's ``q`` filter expression: a small parser and the predicate it compiles to.

The documented operators are ``=``, ``:``, ``>``, ``<``, ``>=``, ``<=``, ``AND``, ``OR`` and
``NOT`` (the docs' own example: ``status_code:succeeded AND created_at>2026-04-01``). Terms are
``field<op>value``; values are bare (up to the next space) or double-quoted (``\\"`` escapes a
quote); parentheses group. Terms side by side are joined by ``AND``; ``NOT`` binds tightest, then
``AND``, then ``OR``. Keywords may be written in any case. Matching is case-sensitive.

- ``:`` and ``=`` test equality; a bare value ``a|b`` accepts either; ``null`` matches a field
  that is not set. On a time field a date alone (``created_at:2026-04-01``) matches that UTC day.
- ``>``, ``<``, ``>=``, ``<=`` compare times (``created_at``, ``started_at``, ``completed_at``:
  an ISO date, read as its midnight UTC, or an ISO date-time) and ``cost`` (a decimal). A field
  that is not set never matches a comparison.

Fields: ``id``, ``client_ref``, ``status_code`` (``canceled`` and ``cancelled`` both match a
canceled run), ``batch_id``, ``model``, ``model_id``, the three times, ``cost`` and
``metadata.<key>``. Anything else is a 422 naming the problem and the fix.

>>> match = parse_query('status_code:succeeded AND created_at>2026-04-01')
>>> match({"status_code": "succeeded", "created_at": 1775088000.0})  # 2026-04-02
True
>>> match({"status_code": "failed", "created_at": 1775088000.0})
False
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from ..errors import Issue, ValidationError

__all__ = ["FIELDS", "Predicate", "parse_query"]

Row = Mapping[str, Any]
Predicate = Callable[[Row], bool]

TIME_FIELDS = ("created_at", "started_at", "completed_at")
#: Fields a term may name (``metadata.<key>`` too).
FIELDS = ("id", "client_ref", "status_code", "batch_id", "model", "model_id", *TIME_FIELDS, "cost")
_ORDERED = (*TIME_FIELDS, "cost")

_TERM = re.compile(r"(?P<field>[A-Za-z_][A-Za-z0-9_.]*)\s*(?P<op>>=|<=|:|=|>|<)\s*")
_KEYWORD = re.compile(r"(AND|OR|NOT)(?=[\s()]|$)", re.IGNORECASE)
_FIX = 'write field:value terms joined by AND / OR / NOT, e.g. status_code:succeeded AND created_at>2026-04-01'


def _refuse(message: str, fix: str = _FIX) -> ValidationError:
    return ValidationError([Issue("q", message, fix)])


def _tokens(text: str) -> list[tuple[str, Any]]:
    """``(kind, value)`` tokens: ``(``, ``)``, ``AND``/``OR``/``NOT``, or ``term`` (field, op, value, quoted)."""
    out: list[tuple[str, Any]] = []
    pos, depth = 0, 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return out
        ch = text[pos]
        if ch == "(":
            out.append(("(", None))
            depth, pos = depth + 1, pos + 1
            continue
        if ch == ")":
            if depth == 0:
                raise _refuse(f"a ')' at character {pos + 1} closes nothing", "remove it or add its '('")
            out.append((")", None))
            depth, pos = depth - 1, pos + 1
            continue
        kw = _KEYWORD.match(text, pos)
        if kw is not None:
            out.append((kw[1].upper(), None))
            pos = kw.end()
            continue
        term = _TERM.match(text, pos)
        if term is None:
            raise _refuse(f"cannot read the filter at {text[pos:pos + 40]!r} (character {pos + 1})")
        pos = term.end()
        if text.startswith('"', pos):
            m = re.compile(r'"((?:[^"\\]|\\.)*)"').match(text, pos)
            if m is None:
                raise _refuse(f"the quoted value of {term['field']} is not closed", 'end it with a "')
            value, quoted, pos = re.sub(r"\\(.)", r"\1", m[1]), True, m.end()
        else:
            m = re.compile(r"\S*").match(text, pos)
            assert m is not None
            value = m[0]
            closing = len(value) - len(value.rstrip(")"))
            value = value[: len(value) - min(closing, depth)]  # ")" that close a group are not the value's
            quoted, pos = False, pos + len(value)
            if not value:
                raise _refuse(f"{term['field']}{term['op']} has no value",
                              f'write {term["field"]}{term["op"]}<value> (quote a value with spaces)')
        out.append(("term", (term["field"], term["op"], value, quoted)))


def _instant(text: str, field: str) -> tuple[float, float | None]:
    """``(start, end)`` epoch seconds of an ISO date (its UTC day) or date-time (end None)."""
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone.utc)
            return day.timestamp(), (day + dt.timedelta(days=1)).timestamp()
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise _refuse(f"{field}: {text!r} is not an ISO date or date-time",
                      f"write e.g. {field}>2026-04-01 or {field}>=2026-04-01T12:00:00Z") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.timestamp(), None


def _compile_term(field: str, op: str, value: str, quoted: bool) -> Predicate:
    if field not in FIELDS and not (field.startswith("metadata.") and len(field) > len("metadata.")):
        raise _refuse(f"cannot filter on {field!r}", f"filter on {', '.join(FIELDS)} or metadata.<key>")
    if op in (">", "<", ">=", "<="):
        if field not in _ORDERED:
            raise _refuse(f"{field} cannot be compared with {op!r}",
                          f"compare only {', '.join(_ORDERED)}; test {field} with {field}:<value>")
        bound: Any
        if field == "cost":
            try:
                bound = Decimal(value)
            except InvalidOperation:
                raise _refuse(f"cost: {value!r} is not a number", "write e.g. cost>=0.70") from None
        else:
            bound = _instant(value, field)[0]
        test = {">": lambda a, b: a > b, "<": lambda a, b: a < b,
                ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b}[op]

        def ordered(row: Row) -> bool:
            got = row.get(field)
            if got is None:
                return False
            return bool(test(Decimal(str(got)) if field == "cost" else float(got), bound))
        return ordered
    values = [value] if quoted else value.split("|")
    if field in TIME_FIELDS:
        spans = [None if v == "null" and not quoted else _instant(v, field) for v in values]

        def at(row: Row) -> bool:
            got = row.get(field)
            for span in spans:
                if span is None:
                    if got is None:
                        return True
                elif got is not None and (span[0] <= float(got) < span[1] if span[1] is not None
                                          else int(float(got)) == int(span[0])):
                    return True
            return False
        return at
    if field == "status_code":
        values = ["canceled" if v in ("canceled", "cancelled") else v for v in values]
    accepted = set(values)
    takes_null = "null" in accepted and not quoted

    def equal(row: Row) -> bool:
        got = _read(row, field)
        if got is None:
            return takes_null
        return (str(got) if field == "cost" else got) in accepted
    return equal


def _read(row: Row, field: str) -> Any:
    if field.startswith("metadata."):
        meta = row.get("metadata")
        got = meta.get(field[len("metadata."):]) if isinstance(meta, Mapping) else None
        return None if got is None else got if isinstance(got, str) else str(got)
    return row.get(field)


class _Parser:
    def __init__(self, tokens: list[tuple[str, Any]]) -> None:
        self.tokens, self.pos = tokens, 0

    def peek(self) -> str | None:
        return self.tokens[self.pos][0] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, Any]:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def expression(self) -> Predicate:
        parts = [self.conjunction()]
        while self.peek() == "OR":
            self.take()
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else (lambda row: any(p(row) for p in parts))

    def conjunction(self) -> Predicate:
        parts = [self.unary()]
        while self.peek() in ("AND", "NOT", "(", "term"):
            if self.peek() == "AND":
                self.take()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else (lambda row: all(p(row) for p in parts))

    def unary(self) -> Predicate:
        kind = self.peek()
        if kind is None:
            raise _refuse("the filter ends where a term was expected", "finish the expression, e.g. add a term")
        if kind == "NOT":
            self.take()
            inner = self.unary()
            return lambda row: not inner(row)
        if kind == "(":
            self.take()
            inner = self.expression()
            if self.peek() != ")":
                raise _refuse("a '(' is not closed", "add the missing ')'")
            self.take()
            return inner
        if kind == "term":
            return _compile_term(*self.take()[1])
        raise _refuse(f"{kind!r} where a term was expected", "put a field:value term on each side of AND / OR")


def parse_query(q: str) -> Predicate | None:
    """The predicate of filter expression ``q`` over a run's fields (None for an empty ``q``).
    Raises :class:`~runflow_nb.errors.ValidationError` (a 422 on field ``q``) for a bad expression."""
    tokens = _tokens(q)
    if not tokens:
        return None
    parser = _Parser(tokens)
    predicate = parser.expression()
    if parser.pos != len(tokens):
        raise _refuse(f"unexpected {parser.peek()!r} after a complete expression", "join terms with AND or OR")
    return predicate
