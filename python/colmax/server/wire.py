"""The JSON shapes shared by the server and its client: results as plain objects, and token
matrices as base64 little-endian float32 with offsets. Standard library and NumPy only."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Mapping

import numpy as np

from ..ragged import Ragged


def plain(value):
    """``value`` with NumPy arrays and scalars, tuples, sets and dataclasses turned into JSON types."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return record(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(plain(v) for v in value)
    return value


def record(obj, skip: tuple[str, ...] = ()) -> dict:
    """A dataclass instance (Hit, Explanation, ...) as a JSON object of all its fields, so that
    fields added to the class later appear without a change here."""
    return {f.name: plain(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.name not in skip}


def from_record(cls, data: Mapping, **convert):
    """An instance of dataclass ``cls`` from ``record``'s output: fields the class does not have
    (sent by a newer server) are dropped; ``convert`` maps a field name to a function applied to
    its value."""
    names = {f.name for f in dataclasses.fields(cls)}
    values = {k: v for k, v in data.items() if k in names}
    for name, fn in convert.items():
        if values.get(name) is not None:
            values[name] = fn(values[name])
    return cls(**values)


def ragged_to_wire(ragged: Ragged) -> dict:
    """Token matrices back to back: ``data`` is base64 of the float32 rows (little-endian),
    item i is rows ``offsets[i]:offsets[i + 1]`` of width ``dim``."""
    tokens = np.ascontiguousarray(ragged.tokens, dtype="<f4")
    return {
        "dim": int(tokens.shape[1]),
        "offsets": ragged.offsets.tolist(),
        "data": base64.b64encode(tokens.tobytes()).decode("ascii"),
    }


def ragged_from_wire(obj: Mapping) -> Ragged:
    dim, offsets = int(obj["dim"]), np.asarray(obj["offsets"], dtype=np.int64)
    tokens = np.frombuffer(base64.b64decode(obj["data"]), dtype="<f4").astype(np.float32)
    return Ragged(tokens.reshape(-1, dim), offsets)


def matrix_to_wire(matrix: np.ndarray) -> dict:
    """One token matrix, as a one-item ragged."""
    return ragged_to_wire(Ragged(matrix, np.array([0, len(matrix)], dtype=np.int64)))


def matrix_from_wire(obj: Mapping) -> np.ndarray:
    return ragged_from_wire(obj).tokens
