"""BEIR-style evaluation of an index: queries and qrels readers, nDCG@10, Recall@100, MRR@10, latency.

Definitions follow trec_eval / pytrec_eval (as BEIR reports them): gains are the qrels grades
(linear, ``grade / log2(rank + 1)``), the ideal ranking sorts the judged grades; a document is
relevant when its grade is > 0. Queries without any relevant document are skipped and counted.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .corpus import CorpusError, _open_text


def read_queries(path: str | os.PathLike) -> dict[str, str]:
    """``_id -> text`` from a JSONL file of ``{"_id": ..., "text": ...}`` objects."""
    path = Path(path)
    queries: dict[str, str] = {}
    with _open_text(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise CorpusError(f"{path}:{number}: not valid JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(row, dict) or "_id" not in row or not isinstance(row.get("text"), str):
                raise CorpusError(f"{path}:{number}: a query needs '_id' and a string 'text'")
            queries[str(row["_id"])] = row["text"]
    if not queries:
        raise CorpusError(f"{path}: no queries")
    return queries


def read_qrels(path: str | os.PathLike) -> dict[str, dict[str, int]]:
    """``query id -> {doc id: grade}`` from BEIR's TSV (``query-id corpus-id score``, header
    optional) or TREC's ``qid iteration docid grade``."""
    path = Path(path)
    qrels: dict[str, dict[str, int]] = {}
    with _open_text(path) as f:
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


def ndcg(ranked: Sequence[str], grades: Mapping[str, int], k: int = 10) -> float:
    dcg = sum(max(grades.get(d, 0), 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted((g for g in grades.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall(ranked: Sequence[str], grades: Mapping[str, int], k: int = 100) -> float:
    relevant = {d for d, g in grades.items() if g > 0}
    return len(relevant.intersection(ranked[:k])) / len(relevant) if relevant else 0.0


def mrr(ranked: Sequence[str], grades: Mapping[str, int], k: int = 10) -> float:
    for i, d in enumerate(ranked[:k]):
        if grades.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def score_run(run: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]]) -> dict[str, float]:
    """Mean nDCG@10, Recall@100 and MRR@10 over the queries of ``run`` that have relevant documents."""
    judged = [q for q in run if any(g > 0 for g in qrels.get(q, {}).values())]
    if not judged:
        raise ValueError("no query of the run has a relevant document in the qrels: do the ids match?")
    n = len(judged)
    return {
        "ndcg@10": sum(ndcg(run[q], qrels[q], 10) for q in judged) / n,
        "recall@100": sum(recall(run[q], qrels[q], 100) for q in judged) / n,
        "mrr@10": sum(mrr(run[q], qrels[q], 10) for q in judged) / n,
        "queries": n,
    }


def evaluate(
    index,
    queries: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]],
    *,
    k: int = 100,
    progress: bool = False,
    search_options: Mapping | None = None,
) -> dict:
    """Search every judged query one at a time (encoding included in its latency) and score the
    run; ``search_options`` go to ``index.search`` (e.g. ``exact``, ``nprobe``)."""
    options = dict(search_options or {})
    judged = [q for q in queries if any(g > 0 for g in qrels.get(q, {}).values())]
    if not judged:
        raise ValueError("no query has a relevant document in the qrels: do the query ids match?")
    index.search(queries[judged[0]], k=k, **options)  # warm up: load the model, touch the pages
    run: dict[str, list[str]] = {}
    latencies = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(judged), unit="query", desc="searching")
    try:
        for qid in judged:
            t0 = time.perf_counter()
            hits = index.search(queries[qid], k=k, **options)
            latencies.append(time.perf_counter() - t0)
            run[qid] = [h.id for h in hits]
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    result = score_run(run, qrels)
    ms = np.array(latencies) * 1000.0
    result.update(
        {
            "skipped_queries": len(queries) - len(judged),
            "latency_ms": {
                "mean": float(ms.mean()),
                "p50": float(np.percentile(ms, 50)),
                "p90": float(np.percentile(ms, 90)),
                "p99": float(np.percentile(ms, 99)),
            },
        }
    )
    return result
