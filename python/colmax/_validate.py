"""Argument checks shared by every layer: one rule and one message for each kind of argument.

Wrong types raise TypeError, wrong values ValueError; every message names the argument and
says how to fix it.
"""

from __future__ import annotations

import numpy as np


def positive_int(name: str, value) -> int:
    """``value`` as an int >= 1 (bools are not ints here)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def id_list(ids, what: str = "ids") -> list[str]:
    """A string, or an iterable of strings, as a list of ids."""
    if isinstance(ids, str):
        return [ids]
    try:
        out = list(ids)
    except TypeError:
        raise TypeError(f"{what} must be a string or a list of strings, got {type(ids).__name__}") from None
    for i, x in enumerate(out):
        if not isinstance(x, str):
            raise TypeError(f"{what}[{i}] is {type(x).__name__}, ids are strings")
    return out


def one_id(value, what: str = "id") -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, got {type(value).__name__}")
    return value


def text_list(texts, what: str = "texts", *, blank_ok: bool = False, empty_ok: bool = False) -> list[str]:
    """A list of strings, non-empty unless ``empty_ok`` (each with some text unless ``blank_ok``)."""
    if isinstance(texts, (str, bytes)):
        raise TypeError(f"{what} must be a list of strings, not one string: pass [text]")
    try:
        out = list(texts)
    except TypeError:
        raise TypeError(f"{what} must be a list of strings, got {type(texts).__name__}") from None
    if not out and not empty_ok:
        raise ValueError(f"{what} is empty: pass at least one string")
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise TypeError(f"{what}[{i}] is {type(t).__name__}, expected str")
        if not blank_ok and not t.strip():
            raise ValueError(f"{what}[{i}] is empty: every text needs some words")
        _unicode(t, f"{what}[{i}]")
    return out


def one_text(text, what: str) -> str:
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a string, got {type(text).__name__}")
    if not text.strip():
        raise ValueError(f"{what} is empty: it needs some words")
    return _unicode(text, what)


def _unicode(text: str, what: str) -> str:
    """``text`` if it can be written as UTF-8 (the tokenizer and the store need that)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(
            f"{what} is not valid Unicode text: it holds a lone surrogate at character {e.start} "
            "(decode bytes with errors='replace', or remove it)"
        ) from None
    return text


def float_matrix(m, what: str, dim: int | None = None, *, rows: bool = True) -> np.ndarray:
    """A 2-D floating-point array of width ``dim`` with finite values (and at least one row
    unless ``rows`` is False), as C-contiguous float32 (a copy only where needed)."""
    if not isinstance(m, np.ndarray):
        raise TypeError(f"{what} must be a 2-D array (n_tokens, dim), got {type(m).__name__}")
    if m.ndim != 2:
        raise ValueError(f"{what} must be 2-D with shape (n_tokens, {dim or 'dim'}), got shape {m.shape}")
    if dim is not None and m.shape[1] != dim:
        raise ValueError(f"{what} has shape {m.shape}: vectors of dim {m.shape[1]}, expected dim {dim}")
    if not np.issubdtype(m.dtype, np.floating):
        raise TypeError(f"{what} must be floating point, got {m.dtype}")
    if rows and m.shape[0] == 0:
        raise ValueError(f"{what} has no rows: pass at least one token vector")
    out = np.ascontiguousarray(m, dtype=np.float32)
    if not np.isfinite(out).all():
        raise ValueError(f"{what} holds NaN or infinite values")
    return out
