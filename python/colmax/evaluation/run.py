"""Running an evaluation: every judged query searched one at a time, latency included."""

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
    run; ``search_options`` go to ``index.search`` (e.g. ``exact``, ``nprobe``)."""
    options = dict(search_options or {})
    judged = [q for q in queries if any(g > 0 for g in qrels.get(q, {}).values())]
    if not judged:
        raise ValueError("no query has a relevant document in the qrels: do the query ids match?")
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
