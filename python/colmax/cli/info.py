"""`colmax info`: version, instruction sets and threads, so a bug report starts from facts."""

from __future__ import annotations

import argparse
import platform

import numpy as np


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("info", help="print version, instruction sets and threads")
    parser.add_argument("index", nargs="?", help="also describe this index (or sharded index) directory")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from colmax import _core
    from colmax._version import __version__

    print(f"colmax {__version__}")
    print(f"python {platform.python_version()} on {platform.machine()}, numpy {np.__version__}")
    print(f"compiled ISAs:  {', '.join(_core.compiled_isas())}")
    print(f"supported ISAs: {', '.join(_core.supported_isas())}")
    print(f"active ISA:     {_core.active_isa()}")
    print(f"threads:        {_core.default_threads()}")
    if args.index:
        from colmax.distributed.root import is_root

        (print_sharded_info if is_root(args.index) else print_info)(args.index)
    return 0


def print_info(path: str) -> None:
    """The index part of `colmax info INDEX`."""
    from colmax.index import Index

    with Index.open(path) as index:
        info = index.info()
    print(f"index:          {info['path']} (format {info['format_version']}, colmax {info['created_with']})")
    model = info["model"] + (f" ({info['model_path']})" if info["model_path"] else "")
    print(f"model:          {model}")
    split = info["passages"] - info["documents"]
    print(
        f"documents:      {info['documents']}"
        + (f" as {info['passages']} passages" if split else "")
        + f" ({info['deleted']} deleted passages, {info['segments']} segments)"
    )
    settings = info["passage_settings"]
    if settings:
        length, stride = settings["length"], settings["stride"]
        titled = ", continued ones led by their document's title" if settings.get("titles") else ""
        print(f"passages:       up to {length} tokens each, one starting every {stride} tokens{titled}")
    copy = info["storage"] or "no full-precision copy"
    print(f"tokens:         {info['tokens']} x {info['dim']} dims, {copy}")
    if info["kind"] == "plaid":
        print(
            f"plaid:          {info['centroids']} centroids, {info['nbits']} bits per dimension, "
            f"codebook trained on {info['codebook_trained_tokens']} tokens"
        )
    print(f"bytes/token:    {info['bytes_per_token'] or 0:g}")
    if info["keyword_index"]:
        print("keyword index:  yes (SQLite FTS5, BM25; searches default to hybrid)")
    else:
        print("keyword index:  no (semantic search only; add it with: colmax add-keyword-index INDEX)")
    print(f"size on disk:   {info['size_on_disk'] / 2**20:.1f} MiB")
    verified = info["last_verified"]
    if verified is None:
        print("verified:       never (colmax verify INDEX hashes every file)")
    else:
        when = "this commit" if verified["current"] else "an earlier commit: run colmax verify again"
        print(f"verified:       {verified['verified_at']}, generation {verified['generation']} ({when})")
    print(f"fits in RAM:    {fits_in_memory(info['size_on_disk'])}")


def fits_in_memory(size: int) -> str:
    """Whether ``size`` bytes fit in the memory available now (searches then never wait on the
    disk once the pages are cached), with the figures."""
    from colmax.index.defaults import available_memory

    available = available_memory()
    if available is None:
        return "unknown (no MemAvailable in /proc/meminfo)"
    verdict = "yes" if size <= available else "no: searches will read from disk"
    return f"{verdict} ({size / 2**30:.2f} GiB of {available / 2**30:.1f} GiB available)"


def print_sharded_info(path: str) -> None:
    """`colmax info ROOT` for a sharded index: the root description and each shard, read here
    at the generations the root records (no Ray needed)."""
    from colmax.distributed.layout import local_info

    info = local_info(path)
    print(
        f"sharded index:  {info['path']} (format {info['format_version']}, colmax {info['created_with']}, "
        f"generation {info['generation']})"
    )
    model = info["model"] + (f" ({info['model_path']})" if info["model_path"] else "")
    print(f"model:          {model}")
    print(f"kind:           {info['kind']}, dim {info['dim']}, storage {info['storage'] or 'none'}")
    if info["kind"] == "plaid":
        cb = info["codebook"]
        trained = (
            f"{cb['centroids']} centroids, sha256 {cb['sha256'][:16]}" if "sha256" in cb else "untrained"
        )
        print(f"codebook:       shared, {cb['nbits']} bits per dimension, {trained}")
    print(f"router:         {info['router']} over {info['n_shards']} shards")
    print(f"documents:      {info['documents']}")
    if info["keyword_index"] is not None:
        if info["keyword_index"]:
            print("keyword index:  yes, on every shard (searches default to hybrid)")
        else:
            print("keyword index:  no (semantic search only; add it with ShardedIndex.add_keyword_index())")
    if info["pending_write"]:
        print("pending write:  yes (an unfinished write; the next write rolls the shards back)")
    if info["size_on_disk"] is not None:
        print(f"size on disk:   {info['size_on_disk'] / 2**20:.1f} MiB")
    for shard in info["shards"]:
        line = f"  shard {shard['shard']:>3}  {shard['path']}  generation {shard['generation']}  "
        line += f"{shard['documents']} documents"
        if "size_on_disk" in shard:
            line += f" ({shard['deleted']} deleted, {shard['segments']} segments, "
            line += f"{shard['size_on_disk'] / 2**20:.1f} MiB)"
        else:
            line += " (not readable on this machine)"
        print(line)
