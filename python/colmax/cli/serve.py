"""`colmax serve INDEX [INDEX ...]`: indexes as a JSON API and a search page (extra `server`); a
sharded index's root directory is served like an index, its shards searched on Ray (extra `ray`)."""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from pathlib import Path

INSTALL = 'pip install "colmax[server]"'
INSTALL_RAY = 'pip install "colmax[ray]"'


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve indexes over HTTP: a JSON API and a search page",
        description="Serve index directories as a JSON API (search, explain, add, delete, encode; "
        "OpenAPI schema at /docs) and a search page at /. Each index is served under its directory's "
        f"name, or NAME=PATH. Needs the server extra: {INSTALL}. A sharded index (a directory holding "
        "colmax-sharded.json) is served the same way, its shards searched by Ray actors: this process "
        f"starts a local Ray, or joins the cluster at --ray-address (needs {INSTALL_RAY}).",
    )
    parser.add_argument(
        "indexes", nargs="+", metavar="INDEX", help="index (or sharded index) directory, or NAME=PATH"
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)"
    )
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument(
        "--api-key",
        default=os.environ.get("COLMAX_API_KEY"),
        help="require 'Authorization: Bearer KEY' on every request but /health (default: $COLMAX_API_KEY)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads per search (default: every CPU); for a sharded index, threads per shard (default 1)",
    )
    parser.add_argument(
        "--ray-address",
        default=None,
        metavar="ADDRESS",
        help="sharded indexes: the Ray cluster to join (default: $RAY_ADDRESS, else a new local one)",
    )
    parser.add_argument(
        "--replicas", type=int, default=1, help="sharded indexes: Ray actors per shard (default 1)"
    )
    parser.add_argument(
        "--cpus-per-replica",
        type=float,
        default=None,
        help="sharded indexes: CPUs each actor reserves (default: its threads; a fraction shares cores)",
    )
    parser.add_argument("--readers", type=int, default=16, help="searches run at once (default 16)")
    parser.add_argument(
        "--cors",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="let pages from ORIGIN call the API (repeat)",
    )
    parser.add_argument("--max-k", type=int, default=None, help="most hits per query (default 1000)")
    parser.add_argument(
        "--max-batch", type=int, default=None, help="most queries per search request (default 256)"
    )
    parser.add_argument(
        "--max-body-mb", type=float, default=None, help="largest request body in MiB (default 32)"
    )
    parser.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    parser.set_defaults(func=run)


def targets(specs: list[str]) -> dict[str, Path]:
    """``PATH`` or ``NAME=PATH`` arguments -> {name: path}; a name defaults to the directory's."""
    out: dict[str, Path] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep:
            name, path = Path(spec).resolve().name, spec
        if name in out:
            raise ValueError(f"two indexes are named {name!r}: name them apart with NAME=PATH")
        # one object per index directory: two would refuse each other's writes (one writer)
        twin = next((n for n, p in out.items() if p.resolve() == Path(path).resolve()), None)
        if twin is not None:
            raise ValueError(f"{path} is given twice (as {twin!r} and {name!r}): serve it once")
        out[name] = Path(path)
    return out


def limits(args: argparse.Namespace):
    from colmax.server.limits import Limits

    given = {"max_k": args.max_k, "max_batch": args.max_batch}
    if args.max_body_mb is not None:
        given["max_body_bytes"] = int(args.max_body_mb * 2**20)
    return Limits(**{key: value for key, value in given.items() if value is not None})


def run(args: argparse.Namespace) -> int:
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        print(f"colmax serve needs the server extra ({e.name} is missing): {INSTALL}", file=sys.stderr)
        return 2
    from colmax.server.app import create_app
    from colmax.server.app import run as serve

    served = targets(args.indexes)
    opened = {}
    try:
        for name, path in served.items():
            opened[name] = open_served(path, args)
        app = create_app(
            opened, api_key=args.api_key or None, cors=args.cors, limits=limits(args), readers=args.readers
        )
    except BaseException:
        for index in opened.values():
            index.close()
        raise
    app.state.registry.warm()
    for name, index in opened.items():
        shards = f", {index.n_shards} shards on Ray" if hasattr(index, "n_shards") else ""
        print(f"serving {name!r}: {index.path} ({len(index)} documents, {index.kind}{shards})")
    if not _loopback(args.host) and not args.api_key:
        print(
            f"warning: listening on {args.host} without an API key: anyone who can reach it can read and "
            "change the indexes (set --api-key or COLMAX_API_KEY)",
            file=sys.stderr,
        )
    print(f"search page: http://{_url_host(args.host)}:{args.port}/   API docs: /docs", flush=True)
    serve(app, args.host, args.port, args.log_level)
    return 0


def open_served(path: Path, args: argparse.Namespace):
    """An ``Index``, or a ``ShardedIndex`` for a sharded index's root (its actors started on Ray)."""
    from colmax.distributed.root import is_root

    if not is_root(path):
        from colmax.index import Index

        return Index.open(path, threads=args.threads)
    try:
        import ray  # noqa: F401
    except ImportError:
        raise ValueError(f"{path} is a sharded index, and serving one needs Ray: {INSTALL_RAY}") from None
    from colmax.distributed import ShardedIndex

    return ShardedIndex.open(
        path,
        replicas=args.replicas,
        threads_per_shard=args.threads or 1,
        address=args.ray_address,
        cpus_per_replica=args.cpus_per_replica,
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
