"""Retrieval metrics as BEIR reports them: nDCG@10, Recall@100, MRR@10.

Definitions follow trec_eval / pytrec_eval (as BEIR reports them): gains are the qrels grades
(linear, ``grade / log2(rank + 1)``), the ideal ranking sorts the judged grades; a document is
relevant when its grade is > 0. Queries without any relevant document are left out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


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
