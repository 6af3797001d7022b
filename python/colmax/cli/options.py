"""Command-line options shared by several subcommands: metadata filters, the search mode and
the plaid search knobs."""

from __future__ import annotations

import argparse
import json

from colmax.index.fusion import DEFAULT_ALPHA, FUSIONS
from colmax.index.hybrid import MODES


def filter_arg(text: str) -> tuple[str, object]:
    field, sep, value = text.partition("=")
    if not sep or not field:
        raise argparse.ArgumentTypeError(f"expected FIELD=VALUE, got {text!r}")
    try:
        return field, json.loads(value)  # numbers, true/false, null, ["a", "b"]
    except json.JSONDecodeError:
        return field, value


def filter_spec(pairs: list[tuple[str, object]]) -> dict | None:
    """Repeated --filter FIELD=VALUE pairs as an Index filter (a JSON list means any of)."""
    return {f: ({"in": v} if isinstance(v, list) else v) for f, v in pairs} or None


def add_mode_options(parser: argparse.ArgumentParser, extra: tuple[str, ...] = ()) -> None:
    """The search mode and the hybrid fusion, shared by `colmax search` and `colmax eval`."""
    group = parser.add_argument_group("search mode")
    group.add_argument(
        "--mode",
        choices=[*MODES, *extra],
        default=None,
        help="semantic (MaxSim), keyword (BM25) or hybrid (both, fused); default: hybrid when the "
        "index has a keyword index, else semantic" + ("; all: the three side by side" if extra else ""),
    )
    group.add_argument(
        "--alpha",
        type=float,
        default=None,
        help=f"hybrid: the weight of the semantic side, 0 to 1 (default {DEFAULT_ALPHA['minmax']} "
        f"with minmax, {DEFAULT_ALPHA['rrf']} with rrf)",
    )
    group.add_argument(
        "--fusion", choices=FUSIONS, default=None, help="hybrid: min-max scores (default) or reciprocal ranks"
    )


def mode_options(args: argparse.Namespace, mode: str | None) -> dict:
    """Index.search keywords for ``mode`` (None: the index's default); --alpha and --fusion go
    to hybrid searches only."""
    options = {"mode": mode}
    if mode in (None, "hybrid"):
        options.update(alpha=args.alpha, fusion=args.fusion)
    return {key: value for key, value in options.items() if value is not None}


def add_search_options(parser: argparse.ArgumentParser) -> None:
    """The plaid search knobs, shared by `colmax search` and `colmax eval`."""
    group = parser.add_argument_group("plaid indexes")
    group.add_argument("--exact", action="store_true", help="score every document exactly")
    group.add_argument("--nprobe", type=int, default=None, help="centroids probed per query token")
    group.add_argument(
        "--ncandidates", type=int, default=None, help="documents scored exactly in the last stage"
    )


def search_options(args: argparse.Namespace) -> dict:
    options = {"exact": args.exact, "nprobe": args.nprobe, "ncandidates": args.ncandidates}
    return {key: value for key, value in options.items() if value not in (None, False)}
