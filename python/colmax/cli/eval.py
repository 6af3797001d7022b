"""`colmax eval INDEX --queries Q --qrels R`: nDCG@10, Recall@100, MRR@10 and query latency, for
one search mode or the three side by side."""

from __future__ import annotations

import argparse
import json
import sys

from colmax.index.fusion import DEFAULT_ALPHA
from colmax.index.hybrid import MODES

from .options import add_mode_options, add_search_options, mode_options, search_options


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="evaluate an index on BEIR-format queries and qrels",
        description="Search every judged query (one at a time, encoding included) and report mean "
        "nDCG@10, Recall@100 and MRR@10 (trec_eval definitions, graded qrels) and latency "
        "percentiles. Queries without a relevant document are skipped. --mode all evaluates "
        "semantic, keyword and hybrid search one after the other and prints them side by side.",
    )
    parser.add_argument("index", help="index directory")
    parser.add_argument("--queries", required=True, help="queries.jsonl (_id, text)")
    parser.add_argument("--qrels", required=True, help="qrels.tsv (query-id, corpus-id, score)")
    parser.add_argument("--model", default=None, help="model directory, if the index's has moved")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_mode_options(parser, extra=("all",))
    add_search_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from colmax.evaluation import evaluate, read_qrels, read_queries
    from colmax.index import Index

    queries, qrels = read_queries(args.queries), read_qrels(args.qrels)
    results = {}
    with Index.open(args.index, model=args.model) as index:
        for mode in MODES if args.mode == "all" else [args.mode or index.default_mode]:
            results[mode] = evaluate(
                index,
                queries,
                qrels,
                k=100,
                progress=not (args.no_progress or args.json),
                search_options={**mode_options(args, mode), **search_options(args)},
            )
        info = index.info()
    _warn_missing(next(iter(results.values()))["coverage"])
    where = {"path": str(args.index), **{key: info[key] for key in ("documents", "kind", "storage")}}
    fused = _fusion(args) if "hybrid" in results else None
    if args.json:
        if args.mode == "all":
            out = {"modes": results, "fusion": fused, "index": where}
        else:
            ((mode, result),) = results.items()
            out = {**result, "mode": mode, "fusion": fused, "index": where}
        print(json.dumps(out))
        return 0
    first = next(iter(results.values()))
    stored = where["storage"] if where["kind"] == "exact" else f"plaid, copy {where['storage']}"
    print(f"{first['queries']} queries on {where['documents']} documents ({stored})")
    if len(results) == 1:
        ((mode, result),) = results.items()
        print(f"mode        {mode}" + (f" ({fused})" if fused else ""))
        print(f"nDCG@10     {result['ndcg@10']:.4f}")
        print(f"Recall@100  {result['recall@100']:.4f}")
        print(f"MRR@10      {result['mrr@10']:.4f}")
        lat = result["latency_ms"]
        print(f"latency ms  p50 {lat['p50']:.1f}  p90 {lat['p90']:.1f}  p99 {lat['p99']:.1f}", end="")
        print(f"  mean {lat['mean']:.1f}")
    else:
        print(f"{'':<14}" + "".join(f"{mode:>10}" for mode in results))
        for key, name in (("ndcg@10", "nDCG@10"), ("recall@100", "Recall@100"), ("mrr@10", "MRR@10")):
            print(f"{name:<14}" + "".join(f"{r[key]:>10.4f}" for r in results.values()))
        for p in ("p50", "p90", "p99", "mean"):
            print(f"{p + ' ms':<14}" + "".join(f"{r['latency_ms'][p]:>10.1f}" for r in results.values()))
        print(f"hybrid: {fused}")
    if first["skipped_queries"]:
        print(f"({first['skipped_queries']} queries without relevant documents skipped)")
    return 0


def _warn_missing(covered: dict | None) -> None:
    """Say on stderr when judged documents are not in the index: their queries score zeros that
    measure the index's contents, not its ranking (--json carries the same in "coverage")."""
    if covered and covered["missing_documents"]:
        print(
            f"colmax eval: warning: {covered['missing_documents']} of the {covered['relevant_documents']} "
            f"relevant documents are not in the index; {covered['queries_without_indexed_relevant']} "
            "queries have none of theirs indexed and score 0",
            file=sys.stderr,
        )


def _fusion(args: argparse.Namespace) -> str:
    method = args.fusion or "minmax"
    alpha = DEFAULT_ALPHA[method] if args.alpha is None else args.alpha
    return f"{method} fusion, alpha {alpha:g}"
