"""Metadata filters: ``{"field": value, "other": {"in": [a, b]}}``, compiled to an SQL predicate.

Every condition must hold (AND). ``value`` matches by equality of JSON type and value (``True``
does not match ``1``; ``None`` matches an explicit null, not a missing field); ``{"in": [...]}``
matches any of the listed values. The filter selects the candidate documents before scoring.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

_SCALARS = (str, int, float, bool, type(None))


def _path(field: str) -> str:
    # JSON path with the key quoted, so dots and spaces in field names are literal
    return "$." + json.dumps(field)


def _match(field: str, value) -> tuple[str, list]:
    path = _path(field)
    if value is None:
        return "json_type(meta, ?) = 'null'", [path]
    if isinstance(value, bool):
        return "json_type(meta, ?) = ?", [path, "true" if value else "false"]
    if isinstance(value, str):
        return "(json_type(meta, ?) = 'text' AND json_extract(meta, ?) = ?)", [path, path, value]
    # int or float: JSON numbers compare by value (1 == 1.0)
    return "(json_type(meta, ?) IN ('integer', 'real') AND json_extract(meta, ?) = ?)", [path, path, value]


def compile_filter(spec: Mapping) -> tuple[str, list]:
    """Return ``(sql, params)`` for a filter; raise TypeError/ValueError naming what to fix."""
    if not isinstance(spec, Mapping):
        raise TypeError(f"filter must be a dict like {{'lang': 'en'}}, got {type(spec).__name__}")
    if not spec:
        raise ValueError("filter is empty: pass None to search everything")
    clauses, params = [], []
    for field, condition in spec.items():
        if not isinstance(field, str):
            raise TypeError(f"filter field names must be strings, got {field!r}")
        if isinstance(condition, Mapping):
            if set(condition) != {"in"}:
                raise ValueError(
                    f"filter on {field!r}: the only operator is 'in' ({{'in': [v1, v2]}}), "
                    f"got {sorted(condition)}"
                )
            values = condition["in"]
            if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
                raise TypeError(f"filter on {field!r}: 'in' takes a list of values, got {values!r}")
            values = list(values)
            if not values:
                raise ValueError(f"filter on {field!r}: 'in' needs at least one value")
        else:
            values = [condition]
        ors = []
        for v in values:
            if not isinstance(v, _SCALARS):
                raise TypeError(
                    f"filter on {field!r}: values must be str, int, float, bool or None, "
                    f"got {type(v).__name__}"
                )
            sql, p = _match(field, v)
            ors.append(sql)
            params.extend(p)
        clauses.append("(" + " OR ".join(ors) + ")")
    return " AND ".join(clauses), params
