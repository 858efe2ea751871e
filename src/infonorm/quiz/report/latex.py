"""Math for the page: LaTeX typeset as MathML, and what changed between two formulas.

MathML is drawn by the browser itself (Chromium, Firefox, Safari), offline, as text that
scales with the page and can be selected; latex2mathml writes it. Formulas are compared
as sequences of atoms (a symbol with its arguments and scripts), so that a change is
named and highlighted at the size a reader sees: a sign, a factor σ'(…).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from html import escape

from latex2mathml.converter import convert

# a command, an escaped character, white space, or any one character
_TOKEN = re.compile(r"\\[A-Za-z]+|\\.|\s+|.", re.S)
# commands and how many arguments they take
_ARGUMENTS = {
    r"\frac": 2,
    r"\dfrac": 2,
    r"\tilde": 1,
    r"\hat": 1,
    r"\bar": 1,
    r"\mathrm": 1,
    r"\operatorname": 1,
    r"\sqrt": 1,
    r"\class": 2,
}
# $…$ in prose; a backslash-escaped dollar stays a dollar
_INLINE = re.compile(r"(?<!\\)\$(.+?)(?<!\\)\$", re.S)
_MINUS = "-"


def readable(latex: str) -> str:
    """The quiz's `X.grad` with `grad` upright, as a name, not as g·r·a·d."""
    return re.sub(r"(?<!\\text\{)\.grad\b", r"\\text{.grad}", latex)


def mathml(latex: str, *, display: bool = False) -> str:
    """`latex` as a MathML element; the source itself, in <code>, if it cannot be parsed.

    A display formula is set in display style but flows as an inline element (class
    "display"), so that it starts at the left edge like the text around it instead of being
    centered, and a box around it can scroll it sideways.
    """
    try:
        markup = convert(readable(latex), display="block" if display else "inline")
    except Exception:  # latex2mathml's errors share no base class but Exception
        return f"<code>{escape(latex)}</code>"
    # the quiz's "+=" is one operator, not a plus and an equals sign spaced apart
    markup = markup.replace("<mo>&#x0002B;</mo><mo>&#x0003D;</mo>", "<mo>+=</mo>")
    return markup.replace(' display="block"', ' class="display"', 1)


# symbols as a terminal shows them; commands not listed lose their backslash
_PLAIN_SYMBOLS = {
    r"\lambda": "λ",
    r"\mu": "μ",
    r"\sigma": "σ",
    r"\sum": "Σ",
    r"\le": "≤",
    r"\leq": "≤",
    r"\ge": "≥",
    r"\geq": "≥",
    r"\ne": "≠",
    r"\approx": "≈",
    r"\infty": "∞",
    r"\cdot": "·",
    r"\times": "×",
    r"\partial": "∂",
    r"\,": " ",
    r"\;": " ",
    r"\!": "",
}
# commands whose one argument is shown as it is
_PLAIN_UNWRAPPED = re.compile(r"\\(?:mathrm|text|operatorname)\{([^{}]*)\}")
# a script of several characters, in braces: Σ_(k ≤ K)
_PLAIN_SCRIPT = re.compile(r"([_^])\{([^{}]*)\}")


def plain(text: str) -> str:
    """`text` with every $…$ written as plain Unicode, for a terminal: H(Pop, Q_λ)."""

    def unicode(match: re.Match[str]) -> str:
        latex = _PLAIN_UNWRAPPED.sub(r"\1", match.group(1))
        latex = _PLAIN_SCRIPT.sub(r"\1(\2)", latex)
        latex = _TOKEN.sub(lambda t: _PLAIN_SYMBOLS.get(t[0], t[0].lstrip("\\")), latex)
        return latex.replace("-", "−")

    return _INLINE.sub(unicode, text).replace("\\$", "$")


def prose(text: str) -> str:
    """Escaped text with every $…$ typeset."""
    out, at = [], 0
    for match in _INLINE.finditer(text):
        out.append(escape(text[at : match.start()]))
        out.append(mathml(match.group(1)))
        at = match.end()
    out.append(escape(text[at:]))
    return "".join(out).replace("\\$", "$")


# ---------------------------------------------------------------------------- comparing formulas


def atoms(latex: str) -> list[str]:
    """The formula as atoms: a symbol or group with its arguments, primes and scripts;
    \\left … \\right as one atom. Joining the atoms with spaces gives the same formula."""
    tokens = [t for t in _TOKEN.findall(latex) if not t.isspace()]
    out, i = [], 0
    while i < len(tokens):
        atom, i = _atom(tokens, i)
        out.append(atom)
    return out


def _atom(tokens: list[str], i: int) -> tuple[str, int]:
    base, i = _base(tokens, i)
    parts = [base]
    while i < len(tokens) and tokens[i] in ("'", "_", "^"):
        mark = tokens[i]
        if mark == "'":
            parts.append(mark)
            i += 1
            continue
        script, i = _base(tokens, i + 1)
        parts.append(mark + (script if script.startswith("{") else "{" + script + "}"))
    return " ".join(parts), i


def _base(tokens: list[str], i: int) -> tuple[str, int]:
    """One token with what belongs to it: a {group}, a command with its arguments, or
    \\left … \\right."""
    if i >= len(tokens):
        return "", i
    token = tokens[i]
    if token == "{":
        return _group(tokens, i)
    if token == r"\left":
        return _fenced(tokens, i)
    if token == r"\text":  # its argument is text: spaces there are seen
        argument, i = _group(tokens, i + 1, joiner="")
        return token + argument, i
    parts = [token]
    i += 1
    for _ in range(_ARGUMENTS.get(token, 0)):
        argument, i = _base(tokens, i)
        parts.append(argument)
    return " ".join(parts), i


def _group(tokens: list[str], i: int, joiner: str = " ") -> tuple[str, int]:
    depth, start = 0, i
    while i < len(tokens):
        depth += {"{": 1, "}": -1}.get(tokens[i], 0)
        i += 1
        if depth == 0:
            break
    return joiner.join(tokens[start:i]), i


def _fenced(tokens: list[str], i: int) -> tuple[str, int]:
    depth, start = 0, i
    while i < len(tokens):
        if tokens[i] == r"\left":
            depth += 1
        elif tokens[i] == r"\right":
            depth -= 1
            if depth == 0:
                i += 2  # \right and its delimiter
                break
        i += 1
    return " ".join(tokens[start:i]), i


def _factors(items: list[str]) -> list[list[str]]:
    """Atoms grouped into factors: an atom with the (…) and […] that follow it, so that
    σ'(h[t, i]) or h[t, i] is one factor."""
    out: list[list[str]] = []
    i = 0
    while i < len(items):
        factor = [items[i]]
        i += 1
        while i < len(items) and items[i] in ("(", "["):
            close = {"(": ")", "[": "]"}[items[i]]
            depth, start = 0, i
            while i < len(items):
                depth += (items[i] == items[start]) - (items[i] == close)
                i += 1
                if depth == 0:
                    break
            factor += items[start:i]
        out.append(factor)
    return out


@dataclass(frozen=True)
class Comparison:
    """Two forms of one formula, each with its differences marked, and the differences
    named in words (math between $…$)."""

    printed: str  # LaTeX, what differs in \class{wrong}{…}
    corrected: str  # LaTeX, what differs in \class{changed}{…}
    changes: tuple[str, ...]


def compare(printed: str, corrected: str) -> Comparison:
    """Mark and name what `corrected` changes in `printed`: factors added, dropped or
    replaced; inside a replaced factor, the atoms that differ."""
    old, new = _factors(atoms(readable(printed))), _factors(atoms(readable(corrected)))
    keys_old, keys_new = [" ".join(f) for f in old], [" ".join(f) for f in new]
    marked_old: list[str] = []
    marked_new: list[str] = []
    changes: list[str] = []
    matcher = difflib.SequenceMatcher(None, keys_old, keys_new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        was, now = keys_old[i1:i2], keys_new[j1:j2]
        if tag == "equal":
            marked_old += was
            marked_new += now
            continue
        marked_old += [_mark("wrong", was)] if was else []
        if tag == "replace":
            marked_new += _mark_atoms([a for f in old[i1:i2] for a in f], new[j1:j2])
        else:
            marked_new += [_mark("changed", now)] if now else []
        changes.append(_name(" ".join(was), " ".join(now)))
    return Comparison(" ".join(marked_old), " ".join(marked_new), tuple(changes))


def _mark(kind: str, items: list[str]) -> str:
    return rf"\class{{{kind}}}{{{' '.join(items)}}}"


def _mark_atoms(old: list[str], new_factors: list[list[str]]) -> list[str]:
    """The new factors' atoms, with the runs that are not in `old` marked as changed."""
    new = [a for f in new_factors for a in f]
    out = []
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, _, _, j1, j2 in matcher.get_opcodes():
        if j1 == j2:
            continue
        out += new[j1:j2] if tag == "equal" else [_mark("changed", new[j1:j2])]
    return out


def _name(was: str, now: str) -> str:
    """One change in words: a minus sign missing or too many, or one form for another."""
    if not was:
        return "missing minus sign" if now == _MINUS else f"missing ${now}$"
    if not now:
        return "a minus sign too many" if was == _MINUS else f"${was}$ that does not belong"
    return f"${was}$ where ${now}$ is meant"


# the quiz's symbols as plain text writes them: σ'(…) with one level of parentheses inside,
# an adjoint such as σ.grad or "μ.grad via L̃", or a lone σ, μ or L̃
_UNICODE_MATH = re.compile(
    r"σ'\((?:[^()]|\([^()]*\))*\)"
    r"|(?:σ|μ|L̃|\b[ABL])\.grad(?: via (?:σ|μ|L̃))?"
    r"|σ|μ|L̃"
)
_LATEX_OF = {"σ": r"\sigma ", "μ": r"\mu ", "L̃": r"\tilde{L}", " via ": r"\text{ via }"}


def typeset_symbols(text: str) -> str:
    """Plain text with the quiz's symbols (σ'(A h + B), σ.grad, μ) marked as $…$ math, for
    strings written as plain text, such as the titles of the solution's lines."""

    def latex(match: re.Match) -> str:
        out = match.group(0)
        for symbol, command in _LATEX_OF.items():
            out = out.replace(symbol, command)
        return f"${out.strip()}$"

    return _UNICODE_MATH.sub(latex, text)
