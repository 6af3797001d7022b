"""Exact against compressed (plaid) search: quality, latency, size, build time (issue 5's targets).

    python benchmarks/bench_scale.py [--data ../shared/data] [--synthetic-docs 1000000] [--threads N]
    python benchmarks/bench_scale.py --skip-real --baseline OTHER_PYTHON [--keep] [--reuse]

Part 1, real data (SciFact and Cranfield with the default model): exact float32 and int8 indexes
and plaid indexes (2 and 4 bits, and 4 bits with an int8 copy for the last stage) built from the
same encoded vectors; for each, nDCG@10 and Recall@100 of the full ranking, recall of the exact
float32 top-10, median and p99 search latency (query matrices given, so encoding is out of both
sides), the speed-up over exact float32 in the same run (the main rows' searches alternate with
exact float32's, query by query), bytes per token, build time from vectors. With --profile, the
median time of each stage of the staged search (plaid_search's stats) per plaid index.

Part 2, scale: ``--synthetic-docs`` documents x 100 tokens x 128 dims, drawn around real token
vectors (SciFact's, projected to 128 dims by a random orthonormal map: each synthetic document
takes 100 tokens of one real document plus noise, so documents keep the topical structure that
pruning relies on; i.i.d. Gaussian vectors would make every centroid equally far). Streamed into
a plaid index in chunks; prints the build time, peak RSS, size on disk, open time and query
latency (and with --profile its stages). With ``--baseline`` (the Python of another colmax
installation, e.g. the previous commit's venv) the baseline builds the index, in a format both
read, and both installations search it in fresh processes, alternating for ``--rounds`` rounds:
the warm p50 ratio is this installation's against the baseline's on the same files. Encoded
vectors are cached under $COLMAX_CACHE_DIR/bench (or ~/.cache/colmax/bench).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import colmax
import numpy as np
from colmax import _core
from colmax.evaluation import read_qrels, read_queries, score_run
from colmax.evaluation.corpus import read_corpus
from colmax.index.codebook import default_n_centroids

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def cpu_name() -> str:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "?"


def cache_dir() -> Path:
    root = Path(os.environ.get("COLMAX_CACHE_DIR", Path.home() / ".cache" / "colmax"))
    path = root / "bench"
    path.mkdir(parents=True, exist_ok=True)
    return path


def encoded(
    name: str, data: Path, encoder
) -> tuple[list[str], colmax.Ragged, list[str], colmax.Ragged, dict]:
    """Document and query vectors of a BEIR dataset, encoded once and cached."""
    corpus = read_corpus(data)
    queries, qrels = read_queries(data / "queries.jsonl"), read_qrels(data / "qrels.tsv")
    judged = [q for q in queries if any(g > 0 for g in qrels.get(q, {}).values())]
    cached = cache_dir() / f"{name}-{encoder.name.replace('/', '_')}.npz"
    if cached.exists():
        z = np.load(cached)
        docs = colmax.Ragged(z["doc_tokens"], z["doc_offsets"])
        qs = colmax.Ragged(z["q_tokens"], z["q_offsets"])
    else:
        docs = encoder.encode_documents(corpus.texts, progress=True)
        qs = encoder.encode_queries([queries[q] for q in judged])
        np.savez(
            cached, doc_tokens=docs.tokens, doc_offsets=docs.offsets, q_tokens=qs.tokens, q_offsets=qs.offsets
        )
    return corpus.ids, docs, judged, qs, qrels


def timed_search(
    index, queries: list[np.ndarray], k: int, alongside=None, **options
) -> tuple[list[list[str]], np.ndarray, np.ndarray | None]:
    """Each query's top-k ids and milliseconds; with `alongside` (another index), each query is
    searched there too, just before, and its milliseconds returned: both sides then see the same
    moments of a shared machine."""
    index.search(queries[0], k=k, **options)  # warm up: touch the pages
    runs, times, other = [], [], []
    for q in queries:
        if alongside is not None:
            t0 = time.perf_counter()
            alongside.search(q, k=k)
            other.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        hits = index.search(q, k=k, **options)
        times.append(time.perf_counter() - t0)
        runs.append([h.id for h in hits])
    return runs, np.array(times) * 1000.0, np.array(other) * 1000.0 if other else None


STAGES = ("probe_s", "gather_s", "approx_s", "exact_s")


def stage_profile(index, queries: list[np.ndarray], k: int = 10) -> dict:
    """Median seconds of each stage of the default staged search, and the documents each kept
    (the core's own timers, through the index's current snapshot; a benchmark's privilege)."""
    from colmax.index.query import Plan

    snap, plan = index._snapshot, Plan.default(k)
    cb = snap.codebook
    compressed = ("doc_codes", "doc_code_offsets", "residuals", "offsets", "ivf_offsets", "ivf")
    segments = [  # every document allowed (None), the copy if any
        (*(getattr(s, f) for f in compressed), None, s.tokens, s.scales, s.first_pos) for s in snap.segments
    ]
    rows = []
    for q in queries:
        stats: dict = {}
        _core.plaid_search(
            q,
            cb.centroids,
            cb.weights,
            cb.nbits,
            cb.normalize,
            segments,
            k,
            plan.nprobe,
            plan.ncandidates,
            threads=index.threads,
            stats=stats,
        )
        rows.append(stats)
    return {key: float(np.median([r[key] for r in rows])) for key in rows[0]}


def print_profile(label: str, profile: dict) -> None:
    stages = " | ".join(f"{1000 * profile[s]:.2f}" for s in STAGES)
    counts = " / ".join(f"{profile[c]:.0f}" for c in ("probed", "gathered", "pruned", "scored"))
    print(f"| {label} | {stages} | {1000 * profile['decode_s']:.2f} | {counts} |")


PROFILE_HEADER = (
    "| index | probe ms | gather ms | approx ms | exact ms | decode (thread-ms) | centroids / gathered / "
    "pruned / scored |\n|---|---|---|---|---|---|---|"
)


def build(path: Path, docs: colmax.Ragged, ids: list[str], **create) -> tuple[colmax.Index, float]:
    t0 = time.perf_counter()
    index = colmax.Index.create(path, dim=docs.dim, **create)
    index.add_embeddings(docs, ids)
    return index, time.perf_counter() - t0


def real_data(name: str, data: Path, encoder, threads: int | None, args) -> None:
    ids, docs, judged, qs, qrels = encoded(name, data, encoder)
    queries = [np.ascontiguousarray(q) for q in qs]
    print(
        f"\n{name}: {len(ids)} documents, {docs.tokens.shape[0]} tokens x {docs.dim} dims, "
        f"{len(judged)} queries"
    )
    header = (
        f"{'index':<36}{'nDCG@10':>9}{'R@100':>8}{'top10 rec':>10}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'speedup':>9}{'B/token':>9}{'build s':>9}"
    )
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        exact, t_build = build(Path(tmp) / "exact", docs, ids)
        exact.threads = threads
        exact_runs, exact_ms, _ = timed_search(exact, queries, 10)
        exact_p50 = [float(np.median(exact_ms))]  # the latest, alternating with the row measured

        def row(label, index, seconds, alternate=False, **options):
            # the timed top-10 searches; a main row alternates them with exact float32's
            runs, ms, other = timed_search(index, queries, 10, exact if alternate else None, **options)
            if other is not None:
                exact_p50[0] = float(np.median(other))
            deep = [[h.id for h in index.search(q, k=100, **options)] for q in queries]
            quality = score_run(dict(zip(judged, deep)), qrels)
            ndcg10 = score_run(dict(zip(judged, runs)), qrels)["ndcg@10"]
            recall = np.mean([len(set(r) & set(e)) / 10 for r, e in zip(runs, exact_runs)])
            info = index.info()
            print(
                f"{label:<36}{ndcg10:>9.4f}{quality['recall@100']:>8.4f}{recall:>10.3f}"
                f"{np.median(ms):>9.2f}{np.percentile(ms, 99):>9.2f}{exact_p50[0] / np.median(ms):>8.1f}x"
                f"{info['bytes_per_token']:>9}{seconds:>9.1f}"
            )

        row("exact float32", exact, t_build)
        int8, t_build = build(Path(tmp) / "int8", docs, ids, storage="int8")
        int8.threads = threads
        row("exact int8", int8, t_build, alternate=True)
        profiles = []
        for nbits, storage in ((2, None), (4, None), (4, "int8")):
            path = Path(tmp) / f"plaid{nbits}-{storage}"
            plaid, t_build = build(path, docs, ids, kind="plaid", nbits=nbits, storage=storage)
            plaid.threads = threads
            copy = f" + {storage} copy" if storage else ""
            label = f"plaid {nbits}-bit{copy}, {plaid.info()['centroids']} centroids"
            row(label, plaid, t_build, alternate=True)
            if args.profile:
                profiles.append((label, stage_profile(plaid, queries)))
            for nprobe, ncandidates in args.sweep:
                row(
                    f"  nprobe {nprobe}, ncandidates {ncandidates}",
                    plaid,
                    0.0,
                    nprobe=nprobe,
                    ncandidates=ncandidates,
                )
            if storage is None:
                row("  exact=True (decompressed)", plaid, 0.0, exact=True)
        if profiles:
            print(f"\n{name}: stages of the staged search, medians over the queries\n\n{PROFILE_HEADER}")
            for label, profile in profiles:
                print_profile(label, profile)


def projected_pool(docs: colmax.Ragged, dim: int, seed: int) -> colmax.Ragged:
    """Real token vectors mapped to ``dim`` dims by a random orthonormal projection, renormalized."""
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((docs.dim, dim)))
    tokens = docs.tokens @ basis.astype(np.float32)
    tokens /= np.linalg.norm(tokens, axis=1, keepdims=True)
    return colmax.Ragged(np.ascontiguousarray(tokens, dtype=np.float32), docs.offsets)


def synthetic_chunk(pool: colmax.Ragged, n_docs: int, length: int, noise: float, rng) -> colmax.Ragged:
    """Each document: ``length`` tokens of one random real document, plus Gaussian noise."""
    lengths = pool.lengths
    sources = rng.integers(0, len(pool), n_docs)
    rows = pool.offsets[sources][:, None] + (rng.random((n_docs, length)) * lengths[sources][:, None]).astype(
        np.int64
    )
    tokens = pool.tokens[rows.ravel()]
    tokens += rng.standard_normal(tokens.shape, dtype=np.float32) * (noise / np.sqrt(pool.dim))
    tokens /= np.linalg.norm(tokens, axis=1, keepdims=True)
    return colmax.Ragged(tokens, np.arange(n_docs + 1, dtype=np.int64) * length)


def build_scale(docs: colmax.Ragged, path: Path, args) -> dict:
    """Stream the synthetic corpus into a plaid index at `path`; the build's figures."""
    n_docs, length, dim = args.synthetic_docs, 100, 128
    pool = projected_pool(docs, dim, seed=1)
    rng = np.random.default_rng(2)
    shutil.rmtree(path, ignore_errors=True)
    index = colmax.Index.create(
        path,
        dim=dim,
        kind="plaid",
        nbits=2,
        n_centroids=default_n_centroids(n_docs * length),
        threads=args.threads,
    )
    build_s, train_s = 0.0, None  # time inside the index only: generating the vectors is not building
    for start in range(0, n_docs, args.chunk):
        n = min(args.chunk, n_docs - start)
        batch = synthetic_chunk(pool, n, length, args.noise, rng)
        t0 = time.perf_counter()
        index.add_embeddings(batch, [f"s{start + i}" for i in range(n)])
        build_s += time.perf_counter() - t0
        if train_s is None:
            train_s = build_s
        done = start + n
        print(
            f"  {done:>9} docs  build {build_s:7.0f} s  (eta {build_s / done * (n_docs - done):6.0f} s)",
            file=sys.stderr,  # stdout is a worker's answer
            flush=True,
        )
        del batch
    index.close()
    return {
        "build_s": build_s,
        "train_s": train_s,
        "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "built_with": colmax.__version__,
    }


def search_scale(qs: colmax.Ragged, path: Path, args) -> dict:
    """Open the scale index and time `args.passes` passes of k=10 searches over its queries."""
    t0 = time.perf_counter()
    index = colmax.Index.open(path, threads=args.threads)
    open_ms = (time.perf_counter() - t0) * 1000
    # queries: real SciFact queries projected the same way, so they are about the pool's topics
    queries = [np.ascontiguousarray(q) for q in projected_pool(qs, 128, seed=1)][: args.queries]
    passes = []
    # the first pass reads the index from disk (or from pages the build left behind), later
    # passes from the page cache: both are shown
    for _ in range(args.passes):
        _, ms, _ = timed_search(index, queries, 10)
        passes.append(
            {"p50": float(np.median(ms)), "p99": float(np.percentile(ms, 99)), "max": float(ms.max())}
        )
    out = {"open_ms": open_ms, "passes": passes, "queries": len(queries), "version": colmax.__version__}
    out["bytes_per_token"] = index.info()["bytes_per_token"]
    if args.profile:
        out["profile"] = stage_profile(index, queries)
    index.close()
    return out


def in_worker(python: str, mode: str, path: Path, args) -> dict:
    """`build_scale` or `search_scale` run by another colmax installation (e.g. the previous
    commit's venv), on the same files, so that both sides measure the same index."""
    cmd = [python, __file__, "--scale-worker", mode, "--workdir", str(path.parent), "--data", str(args.data)]
    for flag in ("synthetic_docs", "chunk", "noise", "queries", "passes"):
        cmd += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    cmd += ["--threads", str(args.threads)] if args.threads else []
    # the other installation must import its own colmax, not this checkout's neighbours
    result = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parent)
    return json.loads(result.stdout.strip().splitlines()[-1])


def print_passes(label: str, result: dict) -> None:
    print(
        f"{label} (colmax {result['version']}): {result['bytes_per_token']} bytes/token stored, "
        f"open {result['open_ms']:.1f} ms"
    )
    for i, row in enumerate(result["passes"]):
        print(
            f"  pass {i + 1}: median {row['p50']:.1f} ms, p99 {row['p99']:.1f} ms, max {row['max']:.1f} ms",
            flush=True,
        )


def scale(docs: colmax.Ragged, qs: colmax.Ragged, args) -> None:
    n_docs, length, dim = args.synthetic_docs, 100, 128
    n_tokens = n_docs * length
    print(
        f"\nscale: {n_docs} synthetic documents x {length} tokens x {dim} dims ({n_tokens} tokens), "
        f"plaid 2-bit, {default_n_centroids(n_tokens)} centroids (the default for the final corpus size)"
    )
    path = Path(args.workdir) / "colmax-scale-index"
    if args.reuse and (path / "manifest.json").exists():
        print(f"reusing {path}")
    else:
        # with a baseline, the baseline builds: its format is one both sides read
        built = (
            in_worker(args.baseline, "build", path, args) if args.baseline else build_scale(docs, path, args)
        )
        size = sum(p.stat().st_size for p in path.iterdir() if p.is_file())
        print(
            f"build {built['build_s'] / 60:.1f} min by colmax {built['built_with']} (first chunk incl. "
            f"codebook training {built['train_s']:.0f} s), peak RSS {built['peak_rss'] / 2**30:.2f} GiB\n"
            f"size on disk {size / 1e9:.3f} GB ({size / 2**30:.3f} GiB), "
            f"{size / n_tokens:.2f} bytes/token all files"
        )
    sides = [("this", sys.executable)] + ([("baseline", args.baseline)] if args.baseline else [])
    medians: dict[str, list[float]] = {side: [] for side, _ in sides}
    for round_ in range(args.rounds if args.baseline else 1):
        for side, python in sides if round_ % 2 == 0 else sides[::-1]:
            # with a baseline both sides search in fresh processes, alike
            result = (
                in_worker(python, "search", path, args) if args.baseline else search_scale(qs, path, args)
            )
            print_passes(f"{side}, round {round_ + 1}", result)
            medians[side] += [row["p50"] for row in result["passes"][1:]] or [result["passes"][0]["p50"]]
            if "profile" in result:
                print(f"\nstages of the staged search, medians over the queries\n\n{PROFILE_HEADER}")
                print_profile(f"{n_docs} synthetic documents", result["profile"])
    if args.baseline:
        this, base = np.median(medians["this"]), np.median(medians["baseline"])
        print(f"warm p50: this {this:.1f} ms, baseline {base:.1f} ms: {this / base:.2f}x the baseline's time")
    if not args.keep:
        shutil.rmtree(path, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--synthetic-docs", type=int, default=1_000_000, help="0 skips the scale run")
    parser.add_argument("--chunk", type=int, default=25_000, help="documents per add in the scale run")
    parser.add_argument("--noise", type=float, default=0.5, help="norm of the noise added to each token")
    parser.add_argument("--queries", type=int, default=200, help="queries timed in the scale run")
    parser.add_argument("--passes", type=int, default=3, help="timed passes over the scale run's queries")
    parser.add_argument("--workdir", default=tempfile.gettempdir(), help="where the scale index is built")
    parser.add_argument("--keep", action="store_true", help="keep the scale index")
    parser.add_argument("--reuse", action="store_true", help="search a kept scale index instead of building")
    parser.add_argument(
        "--baseline", help="python of another colmax installation: it builds, both search, alternating"
    )
    parser.add_argument("--rounds", type=int, default=2, help="alternating search rounds with --baseline")
    parser.add_argument("--scale-worker", choices=("build", "search"), help=argparse.SUPPRESS)
    parser.add_argument("--skip-real", action="store_true", help="only the scale run")
    parser.add_argument("--datasets", default="scifact,cranfield", help="real datasets, comma-separated")
    parser.add_argument("--profile", action="store_true", help="time each stage of the staged search")
    parser.add_argument(
        "--sweep",
        type=lambda text: tuple(int(x) for x in text.split(",")),
        nargs="*",
        default=[],
        metavar="NPROBE,NCANDIDATES",
        help="extra search settings to measure on the real data",
    )
    args = parser.parse_args()

    encoder = colmax.Encoder()
    if args.scale_worker:
        _, docs, _, qs, _ = encoded("scifact", args.data / "scifact", encoder)
        path = Path(args.workdir) / "colmax-scale-index"
        work = build_scale if args.scale_worker == "build" else search_scale
        print(json.dumps(work(docs if args.scale_worker == "build" else qs, path, args)))
        return
    machine = f"ISA {colmax.active_isa()}, {cpu_name()}, {os.cpu_count()} CPUs"
    print(f"colmax {colmax.__version__}, {machine}, {encoder}")
    if not args.skip_real:
        for name in args.datasets.split(","):
            real_data(name, args.data / name, encoder, args.threads, args)
    if args.synthetic_docs:
        _, docs, _, qs, _ = encoded("scifact", args.data / "scifact", encoder)
        scale(docs, qs, args)


if __name__ == "__main__":
    main()
