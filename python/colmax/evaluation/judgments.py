"""Readers of what an evaluation is judged on: BEIR queries (JSONL) and qrels (TSV, or TREC's format)."""

from __future__ import annotations

import os
from pathlib import Path

from .corpus import CorpusError, iter_jsonl, open_text


def read_queries(path: str | os.PathLike) -> dict[str, str]:
    """``_id -> text`` from a JSONL file of ``{"_id": ..., "text": ...}`` objects."""
    path = Path(path)
    queries: dict[str, str] = {}
    for where, row in iter_jsonl(path, "_id and text"):
        if "_id" not in row or not isinstance(row.get("text"), str):
            raise CorpusError(f"{where}: a query needs '_id' and a string 'text'")
        queries[str(row["_id"])] = row["text"]
    if not queries:
        raise CorpusError(f"{path}: no queries")
    return queries


def read_qrels(path: str | os.PathLike) -> dict[str, dict[str, int]]:
    """``query id -> {doc id: grade}`` from BEIR's TSV (``query-id corpus-id score``, header
    optional) or TREC's ``qid iteration docid grade``."""
    path = Path(path)
    qrels: dict[str, dict[str, int]] = {}
    with open_text(path) as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if number == 1 and fields[-1] == "score":
                continue  # BEIR header
            if len(fields) == 3:
                qid, did, grade = fields
            elif len(fields) == 4:
                qid, _, did, grade = fields
            else:
                raise CorpusError(
                    f"{path}:{number}: expected 'query-id corpus-id score' (or TREC's 4 columns), "
                    f"got {line.strip()!r}"
                )
            try:
                qrels.setdefault(qid, {})[did] = int(grade)
            except ValueError:
                raise CorpusError(f"{path}:{number}: the grade {grade!r} is not an integer") from None
    if not qrels:
        raise CorpusError(f"{path}: no judgments")
    return qrels
