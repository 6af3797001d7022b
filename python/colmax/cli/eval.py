"""`colmax eval INDEX --queries Q --qrels R`: nDCG@10, Recall@100, MRR@10 and query latency."""

from __future__ import annotations

import argparse
import json

from .options import add_search_options, search_options


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="evaluate an index on BEIR-format queries and qrels",
        description="Search every judged query (one at a time, encoding included) and report mean "
        "nDCG@10, Recall@100 and MRR@10 (trec_eval definitions, graded qrels) and latency "
        "percentiles. Queries without a relevant document are skipped.",
    )
    parser.add_argument("index", help="index directory")
    parser.add_argument("--queries", required=True, help="queries.jsonl (_id, text)")
    parser.add_argument("--qrels", required=True, help="qrels.tsv (query-id, corpus-id, score)")
    parser.add_argument("--model", default=None, help="model directory, if the index's has moved")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_search_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from colmax.evaluation import evaluate, read_qrels, read_queries
    from colmax.index import Index

    queries, qrels = read_queries(args.queries), read_qrels(args.qrels)
    with Index.open(args.index, model=args.model) as index:
        result = evaluate(
            index,
            queries,
            qrels,
            k=100,
            progress=not (args.no_progress or args.json),
            search_options=search_options(args),
        )
        info = index.info()
        result["index"] = {
            "path": str(args.index),
            "documents": len(index),
            "kind": info["kind"],
            "storage": index.storage,
        }
    if args.json:
        print(json.dumps(result))
        return 0
    lat = result["latency_ms"]
    where = result["index"]
    stored = where["storage"] if where["kind"] == "exact" else f"plaid, copy {where['storage']}"
    print(f"{result['queries']} queries on {where['documents']} documents ({stored})")
    print(f"nDCG@10     {result['ndcg@10']:.4f}")
    print(f"Recall@100  {result['recall@100']:.4f}")
    print(f"MRR@10      {result['mrr@10']:.4f}")
    print(f"latency ms  p50 {lat['p50']:.1f}  p90 {lat['p90']:.1f}  p99 {lat['p99']:.1f}", end="")
    print(f"  mean {lat['mean']:.1f}")
    if result["skipped_queries"]:
        print(f"({result['skipped_queries']} queries without relevant documents skipped)")
    return 0
