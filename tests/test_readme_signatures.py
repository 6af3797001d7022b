"""The call signatures the README shows are the code's: every parameter it names exists (under
that name, in that position when given positionally), and where it writes ``name=value`` for a
documented signature (not a call with ``...``), the default is the code's default."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import colmax
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
# `Name(args)` or `obj.name(args)` in inline code, possibly across a line break.
CALL = re.compile(r"`(?:colmax\.|Index\.|index\.)?([A-Za-z_]\w*)\(([^`()]*)\)`")
# Where a bare name is looked up, in order: Index's methods first (the README's main subject).
OWNERS = (colmax.Index, colmax.Encoder, colmax)


def documented_calls() -> list[tuple[str, str]]:
    text = README.read_text(encoding="utf-8")
    calls = []
    for name, args in CALL.findall(text):
        args = " ".join(args.split())
        if any(callable(getattr(owner, name, None)) for owner in OWNERS) and args and _has_signature(name):
            calls.append((name, args))
    return calls


def _has_signature(name: str) -> bool:
    """Python functions; the C++ core's (no runtime signature) are typed in _core.pyi."""
    try:
        inspect.signature(target(name))
    except ValueError:
        return False
    return True


def target(name: str):
    return next(getattr(owner, name) for owner in OWNERS if callable(getattr(owner, name, None)))


CALLS = documented_calls()


def test_the_readme_documents_signatures():
    names = {name for name, _ in CALLS}
    assert {"create", "open", "compress", "encode_documents"} <= names, names


@pytest.mark.parametrize(("name", "args"), CALLS, ids=[f"{n}({a})" for n, a in CALLS])
def test_readme_signature_matches_the_code(name, args):
    params = inspect.signature(target(name)).parameters
    names = [p for p in params if p not in ("self", "cls")]
    parts = [p.strip() for p in args.split(",") if p.strip()]
    # A documented signature lists parameters with their defaults; a call such as
    # `add(..., upsert=True)` or `Index.open(path, verify=True)` shows one option being set.
    signature = "..." not in parts and sum("=" in p for p in parts) >= 2
    for position, part in enumerate(parts):
        if part == "...":
            continue
        if "=" not in part:  # positional: a parameter's name in a signature
            if signature:
                assert names[position] == part, f"README: {name}({args}); the code: {names}"
            continue
        key, value = (s.strip() for s in part.split("=", 1))
        assert key in params, f"README: {name}({args}) names {key!r}; the code takes {names}"
        if signature:
            default = params[key].default
            assert ast.literal_eval(value) == default, (
                f"README: {name}({args}) shows {key}={value}; the code's default is {default!r}"
            )
