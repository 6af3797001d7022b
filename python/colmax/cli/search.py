"""`colmax search INDEX QUERY`: the best documents for a query, readable or as JSON."""

from __future__ import annotations

import argparse
import json

from .options import (
    add_mode_options,
    add_search_options,
    filter_arg,
    filter_spec,
    mode_options,
    search_options,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "search",
        help="search an index",
        description="Semantic search ranks by MaxSim: exact over every document of an exact index, "
        "staged (centroid probing, then exact scoring of the best candidates) on a plaid index. "
        "Keyword search ranks by BM25 over the index's keyword index (any of the query's terms, "
        "stemmed, minus stopwords). Hybrid search (the default where there is a keyword index) "
        "fuses the two.",
    )
    parser.add_argument("index", help="index directory")
    parser.add_argument("query", help="query text")
    parser.add_argument("-k", type=int, default=10, help="number of results (default 10)")
    parser.add_argument(
        "--filter",
        action="append",
        type=filter_arg,
        default=[],
        metavar="FIELD=VALUE",
        help="keep documents whose metadata FIELD equals VALUE (JSON or text; a JSON list means any "
        "of); repeat to require several",
    )
    parser.add_argument("--model", default=None, help="model directory, if the index's has moved")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    add_mode_options(parser)
    add_search_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from colmax.index import Index

    with Index.open(args.index, model=args.model) as index:
        hits = index.search(
            args.query,
            k=args.k,
            filter=filter_spec(args.filter),
            **mode_options(args, args.mode),
            **search_options(args),
        )
    if args.json:
        out = {
            "query": args.query,
            "hits": [
                {
                    "rank": r,
                    "id": h.id,
                    "score": h.score,
                    "semantic_score": h.semantic_score,
                    "keyword_score": h.keyword_score,
                    "passage": h.passage,
                    "span": h.span,
                    "metadata": h.metadata,
                    "text": h.text,
                }
                for r, h in enumerate(hits, 1)
            ],
        }
        print(json.dumps(out, ensure_ascii=False))
        return 0
    if not hits:
        print("no documents match")
    both = any(h.semantic_score is not None and h.keyword_score is not None for h in hits)
    width = max((len(h.id) for h in hits), default=2)
    for rank, h in enumerate(hits, 1):
        text = " ".join((h.passage_text or "").split())  # a long document: its winning passage
        if len(text) > 90:
            text = text[:87] + "..."
        sides = f"  (maxsim {h.semantic_score:.4f}, bm25 {h.keyword_score:.4f})" if both else ""
        where = f"  [passage {h.passage}, characters {h.span[0]}-{h.span[1]}]" if h.span else ""
        print(f"{rank:>3}  {h.score:8.4f}  {h.id:<{width}}{sides}{where}  {text}")
    return 0
