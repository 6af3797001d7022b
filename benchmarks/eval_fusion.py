"""Hybrid search's fusion weight: nDCG@10 of every weight from one search per query.

    python benchmarks/eval_fusion.py INDEX --data ../shared/data/cranfield [--alphas 0.5 0.6 0.7]

For each judged query, the hybrid candidates of ``colmax eval`` (k=100: each side's best 100
documents as their winning passages, completed with their score on the other side) are gathered
once, then fused with min-max fusion at each ``--alphas`` weight and with reciprocal-rank fusion
at each ``--rrf`` weight, each document taking its best fused passage, ties to the earlier added.
What ``colmax eval INDEX --alpha A`` reports for a weight is what this prints for it (it runs the
same search), in a fraction of the time: the query is encoded and both sides searched once.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import colmax
import numpy as np
from colmax.evaluation import read_qrels, read_queries
from colmax.evaluation.metrics import ndcg
from colmax.index import fusion, hybrid
from colmax.index.passages import best_per_document
from colmax.index.query import query_matrix

K = 100  # what `colmax eval` asks of each search


def gather(index: colmax.Index, queries: dict[str, str]) -> dict[str, tuple]:
    """Per query: the candidates' document heads, ids, MaxSim and BM25."""
    snap = index._snap
    where = hybrid.scope(snap, None)
    found = {}
    for qid, text in queries.items():
        q = query_matrix(text, snap.manifest.dim, lambda: index.encoder)
        sides = hybrid.side_scores(snap, text, q, K, where, None, index.threads)
        heads = snap.layout.heads(sides.positions)
        ids = [h.id for h in snap.hits(sides.positions, np.zeros(sides.positions.size), documents=False)]
        found[qid] = (heads, np.array(ids, dtype=object), sides.semantic, sides.keyword)
    return found


def mean_ndcg(found: dict, qrels: dict, fuse) -> float:
    values = []
    for qid, (heads, ids, semantic, lexical) in found.items():
        positions = np.arange(heads.size)  # candidate order stands in for positions: ascending
        best, _ = best_per_document(heads, positions, fuse(semantic, lexical), K)
        values.append(ndcg(list(ids[best]), qrels.get(qid, {}), 10))
    return float(np.mean(values))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("index", type=Path)
    parser.add_argument("--data", type=Path, required=True, help="BEIR data set (queries.jsonl, qrels.tsv)")
    parser.add_argument("--alphas", nargs="+", type=float, default=[0.4, 0.5, 0.6, 0.65, 0.7, 0.75, 0.8])
    parser.add_argument("--rrf", nargs="+", type=float, default=[0.5, 0.6])
    args = parser.parse_args()
    queries, qrels = read_queries(args.data / "queries.jsonl"), read_qrels(args.data / "qrels.tsv")
    judged = {q: t for q, t in queries.items() if any(g > 0 for g in qrels.get(q, {}).values())}
    index = colmax.Index.open(args.index)
    found = gather(index, judged)
    print(f"{args.index} ({args.data.name}, {len(judged)} judged queries), nDCG@10")
    print(f"semantic {mean_ndcg(found, qrels, lambda s, k: s):.4f}")
    print(f"keyword  {mean_ndcg(found, qrels, lambda s, k: np.where(k > 0, k, -1.0)):.4f}")
    for alpha in args.alphas:
        print(
            f"minmax {alpha:<5} {mean_ndcg(found, qrels, lambda s, k, a=alpha: fusion.minmax(s, k, a)):.4f}"
        )
    for alpha in args.rrf:
        print(f"rrf {alpha:<8} {mean_ndcg(found, qrels, lambda s, k, a=alpha: fusion.rrf(s, k, a)):.4f}")


if __name__ == "__main__":
    main()
