"""Corrupted copies of Python code: one mutation, so the code still parses but means otherwise.

A rejected completion that is the true function with a single semantic
mutation is a *hard* negative: it shares almost every token with the chosen
one, so a preference model must look at what the code does. The mutations are
the classic operators of mutation testing (DeMillo, Lipton and Sayward 1978,
"Hints on test data selection"; the relational, arithmetic, logical and
constant replacement operators of Offutt et al. 1996, "An experimental
determination of sufficient mutant operators"):

- relational: ``==`` <-> ``!=``, ``<`` <-> ``>=``, ``>`` <-> ``<=``;
- arithmetic: ``+`` <-> ``-``, ``+=`` <-> ``-=``, ``*`` <-> ``/``, ``//`` <-> ``%``;
- logical: ``and`` <-> ``or``, ``not`` removed, ``in`` -> ``not in``;
  constants ``True`` <-> ``False``;
- control flow: ``break`` <-> ``continue``; builtins ``min`` <-> ``max``,
  ``any`` <-> ``all``;
- integer literals: ``n`` -> ``n + 1`` (decimal literals only);
- return values: ``return <expr>`` -> ``return None`` (statement deletion's
  nearest form that keeps the function's shape).

One candidate token is drawn with the caller's generator; a mutant that does
not parse (``ast.parse``) is skipped for the next candidate.
"""

from __future__ import annotations

import ast
import io
import tokenize

import numpy as np

OPERATOR_SWAPS: dict[str, str] = {
    "==": "!=",
    "!=": "==",
    "<": ">=",
    ">=": "<",
    ">": "<=",
    "<=": ">",
    "+": "-",
    "-": "+",
    "+=": "-=",
    "-=": "+=",
    "*": "/",
    "/": "*",
    "//": "%",
    "%": "//",
}
NAME_SWAPS: dict[str, str] = {
    "and": "or",
    "or": "and",
    "not": "",
    "in": "not in",
    "True": "False",
    "False": "True",
    "break": "continue",
    "continue": "break",
    "min": "max",
    "max": "min",
    "any": "all",
    "all": "any",
}


def _return_value(
    tokens: list[tokenize.TokenInfo], i: int
) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """The (start, end) positions of the value of the ``return`` at ``tokens[i]``;
    None for a bare return or ``return None``."""
    end = i + 1
    while end < len(tokens) and tokens[end].type not in (tokenize.NEWLINE, tokenize.ENDMARKER) and tokens[end].string != ";":
        end += 1
    value = [t for t in tokens[i + 1 : end] if t.type not in (tokenize.COMMENT, tokenize.NL)]
    if not value or (len(value) == 1 and value[0].string == "None"):
        return None
    return value[0].start, value[-1].end


def mutation_sites(code: str) -> list[tuple[int, int, str]]:
    """Every place a mutation applies: ``(start offset, end offset, replacement)``,
    offsets in characters of ``code``. Empty when the code does not tokenize."""
    # Line starts as tokenize counts lines (readline of a StringIO splits on "\n" only).
    starts = [0]
    for line in io.StringIO(code):
        starts.append(starts[-1] + len(line))
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return []

    def offset(position: tuple[int, int]) -> int:
        return starts[position[0] - 1] + position[1]

    sites: list[tuple[int, int, str]] = []
    for i, tok in enumerate(tokens):
        replacement = None
        if tok.type == tokenize.OP:
            replacement = OPERATOR_SWAPS.get(tok.string)
        elif tok.type == tokenize.NAME and tok.string == "return":
            span = _return_value(tokens, i)
            if span is not None:
                sites.append((offset(span[0]), offset(span[1]), "None"))
            continue
        elif tok.type == tokenize.NAME:
            replacement = NAME_SWAPS.get(tok.string)
        elif tok.type == tokenize.NUMBER and tok.string.isdigit() and (
            tok.string == "0" or not tok.string.startswith("0")
        ):
            replacement = str(int(tok.string) + 1)
        if replacement is not None:
            sites.append((offset(tok.start), offset(tok.end), replacement))
    return sites


def corrupt_code(code: str, rng: np.random.Generator) -> str | None:
    """``code`` with one token mutated (see the module docstring), or None when no
    mutation applies or none parses.

    The candidates are tried in an order drawn from ``rng``; the result differs
    from ``code`` at exactly one mutation site and parses with ``ast.parse``.
    """
    sites = mutation_sites(code)
    for index in rng.permutation(len(sites)):
        start, end, replacement = sites[int(index)]
        mutant = code[:start] + replacement + code[end:]
        try:
            ast.parse(mutant)
        except SyntaxError:
            continue
        return mutant
    return None
