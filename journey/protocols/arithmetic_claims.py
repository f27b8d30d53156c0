"""Arithmetic claims in a step of text, each checked exactly.

`check_claims` finds every claim a reader would see: expressions of numbers (`1,234`,
`0.5`, `\\frac{3}{4}`) and `+ - * / ^` (also `×`, `·`, `÷`, `−`, `\\times`, `\\cdot`,
`\\div`, `plus`, `minus`, `times`, `multiplied by`, `divided by`), parentheses (`2(3+4)`
multiplies), joined by `=` (or `equals`, `is equal to`, `is`, and `, which is`), where at
least one side of the chain has an operator. A claim may run over a line break; a
bullet (`- `, `* ` at a line's start) ends one. A running total (`5 + 3 = 8 - 2 = 6`) is
read as two claims, as a reader would; a chain goes on past its result (`63 + 98 =
161, which is 102` claims 161 = 102 too); a claim quoted to be denied (`2 + 2 = 5 is
false`) is none. A stated decimal is right when the exact value rounds to it
(`10 / 3 = 3.33`).

The rule critic (`journey.agents.rule_critics`) judges steps with it, and the
self-correction measure (`journey.evaluation.self_correction`) finds the wrong
intermediate result an output reflects after.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

__all__ = [
    "ArithmeticClaim",
    "ClaimCheck",
    "check_claims",
    "format_value",
    "named_correction",
    "states_number",
]

_MAX_DIGITS, _MAX_EXPONENT = 60, 64  # longer numbers, higher powers: not a step's claims

# -- normalising the text -------------------------------------------------------------------

_REWRITES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"(?<=\d)(?:\\,|\{,\}|,)(?=\d{3}(?!\d))", ""),  # thousands: 1,234 1{,}234 1\,234
        # A chain going on past its result: `161, which is 102` says 161 = 102.
        (r"(?<=\d)\s*,?\s*\b(?:which|that)\s+(?:is|equals|gives|makes)\b", " = "),
        (r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}", r"((\1)/(\2))"),
        (r"\\(?:times|cdot|ast)(?![A-Za-z])|[×·⋅∗]", "*"),
        (r"\\div(?![A-Za-z])|[÷∕]", "/"),
        (r"[−–]", "-"),
        (r"(?<=\d)\s*[xX]\s*(?=\d)", "*"),  # 3 x 4
        (r"(?<=[\d)])\s*\*\*\s*(?=[\d(])", "^"),  # 2**3 (before markdown bold goes)
        (r"\*\*|__", " "),  # markdown bold
        (r"(?m)^[ \t]*[-+*•][ \t]+", "• "),  # a bullet ends the line's claim before it
        (r"\\(?:left|right)(?![A-Za-z])", ""),
        (r"\\text\{([^{}]*)\}", r" \1 "),
        (r"\\[A-Za-z]+|\\.", " "),  # other LaTeX commands (\boxed, \(, \[) leave a gap
        (r"[{}$]", " "),
    )
)


def _normalised(text: str) -> str:
    for pattern, replacement in _REWRITES:
        text = pattern.sub(replacement, text)
    return text


# -- tokens and expressions -----------------------------------------------------------------

_TOKEN = re.compile(
    r"(?P<num>\d+(?:\.\d+)?|\.\d+)"
    r"|(?P<eq>==?|\bis\s+equal\s+to\b|\bequals\b|\bis\b)"
    r"|(?P<op>[-+*/^]|\bplus\b|\bminus\b|\btimes\b|\bmultiplied\s+by\b|\bdivided\s+by\b)"
    r"|(?P<open>\()|(?P<close>\))"
    r"|(?P<space>\s+)"
    r"|(?P<other>[A-Za-z_]\w*|.)",
    re.IGNORECASE,
)
_WORD_OPS = {"plus": "+", "minus": "-", "times": "*", "multiplied": "*", "divided": "/"}


@dataclass(frozen=True)
class _Token:
    kind: str  # num, op, open, close or eq
    text: str
    start: int
    end: int
    spaced: bool  # whitespace stood just before it


def _runs(text: str) -> list[list[_Token]]:
    """Maximal stretches of expression tokens (numbers, operators, brackets, `=`)."""
    runs: list[list[_Token]] = [[]]
    spaced = False
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or "other"
        if kind == "space":
            spaced = True
            continue
        if kind == "other" and runs[-1]:
            runs.append([])
        elif kind != "other":
            value = match.group()
            if kind == "op":
                value = _WORD_OPS.get(value.split()[0].lower(), value)
            runs[-1].append(_Token(kind, value, match.start(), match.end(), spaced))
        spaced = False
    return [run for run in runs if run]


class _Unreadable(Exception):
    """Tokens that are not one whole expression."""


class _Parser:
    """Recursive descent over tokens, exact: + - lowest, then * /, unary -, then ^."""

    def __init__(self, tokens: Sequence[_Token]) -> None:
        self.tokens = tokens
        self.at = 0
        self.operators = 0

    def _peek(self, *texts: str) -> bool:
        return self.at < len(self.tokens) and self.tokens[self.at].text in texts

    def sum(self) -> Fraction:
        value = self.product()
        while self._peek("+", "-"):
            sign = self.tokens[self.at].text
            self.at += 1
            self.operators += 1
            right = self.product()
            value = value + right if sign == "+" else value - right
        return value

    def product(self) -> Fraction:
        value = self.unary()
        while self.at < len(self.tokens):
            token = self.tokens[self.at]
            if token.kind == "open" and not token.spaced:
                operator = "*"  # 2(3 + 4): written together, a product
            elif token.text in ("*", "/"):
                operator = token.text
                self.at += 1
            else:
                break
            self.operators += 1
            right = self.unary()
            if operator == "/":
                if right == 0:
                    raise _Unreadable
                value /= right
            else:
                value *= right
        return value

    def unary(self) -> Fraction:
        if self._peek("-", "+"):
            self.at += 1
            return -self.unary() if self.tokens[self.at - 1].text == "-" else self.unary()
        return self.power()

    def power(self) -> Fraction:
        base = self.atom()
        if not self._peek("^"):
            return base
        self.at += 1
        self.operators += 1
        exponent = self.unary()
        if exponent.denominator != 1 or abs(exponent) > _MAX_EXPONENT or (base == 0 > exponent):
            raise _Unreadable
        return base ** int(exponent)

    def atom(self) -> Fraction:
        if self.at >= len(self.tokens):
            raise _Unreadable
        token = self.tokens[self.at]
        self.at += 1
        if token.kind == "num":
            if len(token.text) > _MAX_DIGITS:
                raise _Unreadable
            return Fraction(token.text)
        if token.kind == "open":
            value = self.sum()
            if not self._peek(")"):
                raise _Unreadable
            self.at += 1
            return value
        raise _Unreadable


def _value(tokens: Sequence[_Token]) -> tuple[Fraction, int] | None:
    """The exact value of tokens that are one whole expression, and its operator count."""
    parser = _Parser(tokens)
    try:
        value = parser.sum()
    except (_Unreadable, ZeroDivisionError, OverflowError, ValueError):
        return None
    return (value, parser.operators) if parser.at == len(tokens) else None


@dataclass(frozen=True)
class _Side:
    tokens: Sequence[_Token]
    value: Fraction
    operators: int

    @property
    def decimals(self) -> int | None:
        """Decimal places of a bare number (`3.33`, `-0.5`); None for anything else."""
        *sign, last = self.tokens
        if last.kind != "num" or [t.text for t in sign] not in ([], ["-"]):
            return None
        return len(last.text.partition(".")[2])


def _side(tokens: Sequence[_Token]) -> _Side | None:
    found = _value(tokens)
    return None if found is None else _Side(tokens, *found)


def _longest(tokens: Sequence[_Token], *, suffix: bool) -> _Side | None:
    """The longest expression at the end (`suffix`) or the start of `tokens`."""
    count = len(tokens)
    cuts = (tokens[at:] if suffix else tokens[: count - at] for at in range(count))
    return next((side for cut in cuts if (side := _side(cut)) is not None), None)


# -- claims -----------------------------------------------------------------------------------


def format_value(value: Fraction) -> str:
    """A value as a step would write it: `7`, `-2.5`, or `10/3` when no short decimal is exact."""
    if value.denominator == 1:
        return str(value.numerator)
    for places in range(1, 7):
        scaled = value * 10**places
        if scaled.denominator == 1:
            text = f"{abs(scaled.numerator):0{places + 1}d}"
            return f"{'-' if value < 0 else ''}{text[:-places]}.{text[-places:]}"
    return f"{value.numerator}/{value.denominator}"


@dataclass(frozen=True)
class ArithmeticClaim:
    """One `left = right` a text states, checked exactly."""

    left: str
    right: str
    left_value: Fraction
    right_value: Fraction
    holds: bool
    start: int  # where the claim starts and ends in `ClaimCheck.normalised`
    end: int
    computed_left: bool
    """The left side is the computation (it has the operators), the right the result."""

    @property
    def text(self) -> str:
        return f"{self.left} = {self.right}"

    @property
    def true_value(self) -> str:
        """What the computation side is worth, as a step would write it (`7` for `3 + 4`)."""
        return format_value(self.left_value if self.computed_left else self.right_value)

    @property
    def correction(self) -> str:
        """The claim and the right value: `3 + 4 = 8 is false: 3 + 4 is 7`."""
        expression, value = (
            (self.left, self.left_value) if self.computed_left else (self.right, self.right_value)
        )
        if expression == format_value(value):  # a restated result: `161 = 102`
            return f"{self.text} is false: {expression} is not {self.right}"
        return f"{self.text} is false: {expression} is {format_value(value)}"


@dataclass(frozen=True)
class ClaimCheck:
    """The arithmetic claims of a text, in order."""

    normalised: str
    """The text with LaTeX, Unicode operators and thousands separators rewritten."""
    claims: tuple[ArithmeticClaim, ...]

    @property
    def false_claims(self) -> tuple[ArithmeticClaim, ...]:
        return tuple(claim for claim in self.claims if not claim.holds)


def _agree(left: _Side, right: _Side) -> bool:
    if left.value == right.value:
        return True
    for stated, exact in ((left, right), (right, left)):
        places = stated.decimals  # a rounded result: right when the exact value rounds to it
        if places and abs(exact.value - stated.value) <= Fraction(1, 2 * 10**places):
            return True
    return False


def _claim(text: str, left: _Side, right: _Side) -> ArithmeticClaim:
    def span(side: _Side) -> str:
        return " ".join(text[side.tokens[0].start : side.tokens[-1].end].split())

    return ArithmeticClaim(
        left=span(left),
        right=span(right),
        left_value=left.value,
        right_value=right.value,
        holds=_agree(left, right),
        start=left.tokens[0].start,
        end=right.tokens[-1].end,
        computed_left=left.operators >= right.operators,
    )


def _parts(run: Sequence[_Token]) -> list[list[_Token]]:
    """A run split at its `=` signs (`==` and `= =` count as one)."""
    parts: list[list[_Token]] = [[]]
    for token in run:
        if token.kind != "eq":
            parts[-1].append(token)
        elif parts[-1]:
            parts.append([])
    return parts


_REFUTED = re.compile(r"\s*(?:is|was)(?:\s+not\b|n't\b|\s+(?:false|wrong|incorrect)\b)", re.I)


def _chain_claims(text: str, run: Sequence[_Token]) -> list[ArithmeticClaim]:
    parts = _parts(run)
    claims = []
    left = _longest(parts[0], suffix=True)
    computed = False  # the chain has stated a result: a later `= n` restates it
    for number, part in enumerate(parts[1:], 1):
        whole = _side(part) if number < len(parts) - 1 else None
        right = whole or _longest(part, suffix=False)
        if left is not None and right is not None:
            lead = _side(right.tokens[:1])
            if not _agree(left, right) and right.operators and lead and _agree(left, lead):
                right = lead  # a running total: `5 + 3 = 8 - 2 = 6` is 5 + 3 = 8, 8 - 2 = 6
            refuted = _REFUTED.match(text, right.tokens[-1].end)  # quoted to be denied
            if (left.operators or right.operators or computed) and not refuted:
                claims.append(_claim(text, left, right))
                computed = True
        left = whole if whole is not None else _longest(part, suffix=True)
    return claims


def check_claims(text: str) -> ClaimCheck:
    """Every arithmetic claim in `text`, each checked exactly (rules in the module docstring)."""
    normalised = _normalised(text)
    claims = [claim for run in _runs(normalised) for claim in _chain_claims(normalised, run)]
    return ClaimCheck(normalised, tuple(claims))


def states_number(text: str, value: str) -> bool:
    """Whether `text` states the number `value` (not as part of a longer number)."""
    plain = text.replace(",", "")  # thousands separators
    return re.search(rf"(?<![\d.]){re.escape(value)}(?![\d]|\.\d)", plain) is not None


def named_correction(step: str, reason: str) -> str | None:
    """The right value that `reason` (why `step` is wrong) names for a false claim of the
    step: "8 * 7 = 54 is false: 8 * 7 is 56" names 56. None when it names none; the
    claim's own numbers do not count."""
    for claim in check_claims(step).false_claims:
        said = reason.replace(claim.text, " ").replace(claim.left, " ").replace(claim.right, " ")
        if states_number(said, claim.true_value):
            return claim.true_value
    return None
