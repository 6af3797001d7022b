"""Running an evaluation: every judged query searched one at a time, latency included, after
checking that the judged documents are in the index at all (ids that do not match would
otherwise score zeros that look like results)."""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np

from .._progress import progress_bar
from .metrics import score_run


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
    run; ``search_options`` go to ``index.search`` (e.g. ``exact``, ``nprobe``). The result's
    ``coverage`` says how many relevant documents the index lacks and how many queries have
    none of theirs indexed; ValueError when it holds none at all."""
    options = dict(search_options or {})
    judged = [q for q in queries if any(g > 0 for g in qrels.get(q, {}).values())]
    if not judged:
        raise ValueError("no query has a relevant document in the qrels: do the query ids match?")
    covered = coverage(index, {q: qrels[q] for q in judged})
    index.search(queries[judged[0]], k=k, **options)  # warm up: load the model, touch the pages
    run: dict[str, list[str]] = {}
    latencies = []
    bar = progress_bar(len(judged), progress, unit="query", desc="searching")
    try:
        for qid in judged:
            t0 = time.perf_counter()
            hits = index.search(queries[qid], k=k, **options)
            latencies.append(time.perf_counter() - t0)
            run[qid] = [h.id for h in hits]
            bar.update(1)
    finally:
        bar.close()
    result = score_run(run, qrels)
    ms = np.array(latencies) * 1000.0
    result.update(
        {
            "coverage": covered,
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


def coverage(index, qrels: Mapping[str, Mapping[str, int]]) -> dict | None:
    """How many of the relevant documents of ``qrels`` the index holds: ``{"relevant_documents",
    "missing_documents", "queries_without_indexed_relevant"}`` (None for an index that cannot
    say which ids it holds). ValueError naming a few ids when it holds none of them."""
    relevant = sorted({d for grades in qrels.values() for d, g in grades.items() if g > 0})
    if hasattr(index, "__contains__"):
        present = {d for d in relevant if d in index}
    elif hasattr(index, "ids"):
        present = set(relevant).intersection(index.ids())
    else:
        return None
    if not present:
        shown = ", ".join(repr(d) for d in relevant[:3])
        raise ValueError(
            f"none of the {len(relevant)} relevant documents of the qrels is in the index (e.g. {shown}): "
            "the qrels' corpus ids must be the index's document ids; was it built from the same corpus?"
        )
    lacking = [q for q, grades in qrels.items() if not any(g > 0 and d in present for d, g in grades.items())]
    return {
        "relevant_documents": len(relevant),
        "missing_documents": len(relevant) - len(present),
        "queries_without_indexed_relevant": len(lacking),
    }
