"""Label and field selectors by Kubernetes' grammar (k8s.io/apimachinery labels and fields):
the same tokens, the same accepted and refused texts, the same error messages."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Match = Callable[[dict[str, Any]], bool]
Test = Callable[[dict[str, str]], bool]


class SelectorError(ValueError):
    pass


# -- label selectors ---------------------------------------------------------------------

IDENT, END, COMMA, OPEN, CLOSE, NOT, EQ, DEQ, NEQ, GT, LT, IN, NOTIN, ERROR = range(14)
_SYMBOLS = {")": CLOSE, ",": COMMA, "!": NOT, "==": DEQ, "=": EQ, ">": GT, "<": LT,
            "!=": NEQ, "(": OPEN}  # fmt: skip
_SPECIAL = set("=!(),><")
_WHITE = set(" \t\r\n")
_OPERATORS = "in, notin, =, ==, !=, gt, lt"
_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _lex(text: str) -> list[tuple[int, str]]:
    tokens: list[tuple[int, str]] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in _WHITE:
            i += 1
        elif ch in _SPECIAL:
            # The longest symbol that is a token ("!=" before "!").
            lit = ch
            while i + len(lit) < len(text) and lit + text[i + len(lit)] in _SYMBOLS:
                lit += text[i + len(lit)]
            i += len(lit)
            tokens.append((_SYMBOLS.get(lit, ERROR), lit))
        else:
            j = i
            while j < len(text) and text[j] not in _SPECIAL and text[j] not in _WHITE:
                j += 1
            lit = text[i:j]
            i = j
            tokens.append(({"in": IN, "notin": NOTIN}.get(lit, IDENT), lit))
    tokens.append((END, ""))
    return tokens


def _key_error(key: str) -> str | None:
    """IsQualifiedName: an optional DNS subdomain prefix and a name of at most 63."""
    parts = key.split("/")
    if len(parts) > 2:
        return (
            f"name part must consist of alphanumeric characters, '-', '_' or '.', and must"
            f" start and end with an alphanumeric character (invalid label key {key!r})"
        )
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix):
            return f"prefix part of {key!r} must be a lowercase RFC 1123 subdomain"
    if not name or len(name) > 63 or not _NAME.match(name):
        return (
            f"invalid label key {key!r}: name part must consist of alphanumeric characters,"
            " '-', '_' or '.', and must start and end with an alphanumeric character"
            " (at most 63 characters)"
        )
    return None


def _value_error(value: str) -> str | None:
    if value and (len(value) > 63 or not _NAME.match(value)):
        return (
            f"invalid label value: {value!r}: a valid label must be an empty string or consist"
            " of alphanumeric characters, '-', '_' or '.', and must start and end with an"
            " alphanumeric character (at most 63 characters)"
        )
    return None


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _lex(text)
        self.pos = 0

    def look(self, values: bool = True) -> tuple[int, str]:
        tok, lit = self.tokens[self.pos]
        if values and tok in (IN, NOTIN):
            tok = IDENT  # in a key or value position "in" is a name
        return tok, lit

    def take(self, values: bool = True) -> tuple[int, str]:
        found = self.look(values)
        self.pos = min(self.pos + 1, len(self.tokens) - 1)
        return found

    def parse(self) -> list[Test]:
        tests: list[Test] = []
        while True:
            tok, lit = self.look()
            if tok == END:
                return tests
            if tok not in (IDENT, NOT):
                raise SelectorError(f"found '{lit}', expected: !, identifier, or 'end of string'")
            try:
                tests.append(self.requirement())
            except SelectorError as exc:
                raise SelectorError(f"unable to parse requirement: {exc}") from None
            tok, lit = self.take()
            if tok == END:
                return tests
            if tok != COMMA:
                raise SelectorError(f"found '{lit}', expected: ',' or 'end of string'")
            nxt, nlit = self.look()
            if nxt not in (IDENT, NOT):
                raise SelectorError(f"found '{nlit}', expected: identifier after ','")

    def requirement(self) -> Test:
        tok, lit = self.take()
        absent = tok == NOT
        if absent:
            tok, lit = self.take()
        if tok != IDENT:
            raise SelectorError(f"found '{lit}', expected: identifier")
        key = lit
        if (why := _key_error(key)) is not None:
            raise SelectorError(why)
        if absent:
            return lambda labels: key not in labels
        if self.look()[0] in (END, COMMA):
            return lambda labels: key in labels
        op, oplit = self.take(values=False)
        if op in (IN, NOTIN):
            values = self.values()
        elif op in (EQ, DEQ, NEQ, GT, LT):
            values = self.exact()
        else:
            raise SelectorError(f"found '{oplit}', expected: {_OPERATORS}")
        for v in values:
            if (why := _value_error(v)) is not None:
                raise SelectorError(why)
        return _test(key, op, values)

    def values(self) -> set[str]:
        tok, lit = self.take()
        if tok != OPEN:
            raise SelectorError(f"found '{lit}' expected: '('")
        tok, lit = self.look()
        if tok == CLOSE:
            self.take()
            return {""}
        if tok not in (IDENT, COMMA):
            raise SelectorError(f"found '{lit}', expected: ',', ')' or identifier")
        found: set[str] = set()
        while True:
            tok, lit = self.take()
            if tok == IDENT:
                found.add(lit)
                nxt, nlit = self.look()
                if nxt == CLOSE:
                    self.take()
                    return found
                if nxt != COMMA:
                    raise SelectorError(f"found '{nlit}', expected: ',' or ')'")
            elif tok == COMMA:
                if not found:
                    found.add("")  # "(,"
                nxt, _ = self.look()
                if nxt == CLOSE:
                    self.take()
                    found.add("")  # ",)"
                    return found
                if nxt == COMMA:
                    self.take()
                    found.add("")  # ",,"
            else:
                raise SelectorError(f"found '{lit}', expected: ',', or identifier")

    def exact(self) -> set[str]:
        tok, lit = self.look()
        if tok in (END, COMMA):
            return {""}
        tok, lit = self.take()
        if tok != IDENT:
            raise SelectorError(f"found '{lit}', expected: identifier")
        return {lit}


def _test(key: str, op: int, values: set[str]) -> Test:
    if op in (IN, EQ, DEQ):
        return lambda labels: key in labels and labels[key] in values
    if op in (NOTIN, NEQ):
        return lambda labels: key not in labels or labels[key] not in values
    (value,) = values
    try:
        bound = int(value)
    except ValueError:
        raise SelectorError("for 'Gt', 'Lt' operators, the value must be an integer") from None

    def compare(labels: dict[str, str]) -> bool:
        try:
            have = int(labels[key])
        except (KeyError, ValueError):
            return False
        return have > bound if op == GT else have < bound

    return compare


def label_selector(text: str | None) -> Match:
    """A label selector (`app=web,tier in (a,b),!canary,size>3`) as a test of objects."""
    tests = _Parser(text or "").parse()

    def match(obj: dict[str, Any]) -> bool:
        labels = obj["metadata"].get("labels") or {}
        return all(t(labels) for t in tests)

    return match


# -- field selectors ---------------------------------------------------------------------

# The fields each kind can be selected by, besides metadata.name and metadata.namespace.
FIELDS: dict[str, set[str]] = {
    "pods": {
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    },
    "nodes": {"spec.unschedulable"},
    "namespaces": {"status.phase"},
    "events": {
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    },
    "replicasets": {"status.replicas"},
    "services": {"spec.clusterIP", "spec.type"},
}


def _split_terms(text: str) -> list[str]:
    """Split on commas that no backslash escapes."""
    terms, cur, escaped = [], "", False
    for ch in text:
        if escaped:
            cur += "\\" + ch
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            terms.append(cur)
            cur = ""
        else:
            cur += ch
    if escaped:
        cur += "\\"
    terms.append(cur)
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    for i in range(len(term)):
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op) :]
    return None


def _unescape(value: str) -> str:
    out, escaped = "", False
    for ch in value:
        if escaped:
            if ch not in "\\,=":
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{ch}")
            out += ch
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in ",=":
            raise SelectorError(f"invalid field selector: unescaped character {ch!r}")
        else:
            out += ch
    if escaped:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return out


def _field(obj: dict[str, Any], path: str) -> str:
    if path == "source":
        return str((obj.get("source") or {}).get("component") or "")
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def field_selector(text: str | None, kind: str | None = None) -> Match:
    """A field selector (`spec.nodeName=10.0.0.3,status.phase!=Failed`); with `kind`, only
    the fields Kubernetes lets that kind be selected by."""
    tests: list[Match] = []
    for term in sorted(_split_terms(text or "")):
        if not term:
            continue
        split = _split_term(term)
        if split is None:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
        path, op, raw = split
        value = _unescape(raw)
        if kind is not None and path not in {"metadata.name", "metadata.namespace"} | FIELDS.get(
            kind, set()
        ):
            raise SelectorError(f"field label not supported: {path}")

        def test(obj: dict[str, Any], path: str = path, value: str = value,
                 negate: bool = op == "!=") -> bool:  # fmt: skip
            return (_field(obj, path) == value) != negate

        tests.append(test)
    return lambda o: all(t(o) for t in tests)
