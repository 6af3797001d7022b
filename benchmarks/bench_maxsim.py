"""MaxSim throughput: colmax per storage precision against NumPy and maxsim-cpu, same run.

For 1 and 2 threads (each in its own process, so every library's thread pool is sized by the
environment before it starts), one query of 32 x 128 against 10,000 and 100,000 documents of
128 tokens and of 32..300 tokens (ragged), it prints the median time of each scorer, document
tokens per second, the ratio to NumPy, and the share of the measured float32 FMA peak (one
core's peak, measured in the same process, times the thread count). A second table compares
maxsim_batch over 8 queries with 8 separate calls. A third gives int8 / float32 throughput per
instruction set (the default one, and each of --isas the machine runs, e.g. avx2 to measure the
AVX2 kernel on a VNNI machine): both timed alternately, call after call, so that load from
elsewhere falls on both.

    python benchmarks/bench_maxsim.py [--sizes 10000,100000] [--repeats 5] [--threads 1,2] [--isas avx2]
        [--int8-dims 128,384] [--int8-docs 10000] [--int8-layout fixed|ragged|scifact]

NumPy baseline: Q @ D.T then np.maximum.reduceat over document offsets, in chunks of ~1M
tokens to bound memory. maxsim-cpu (PyPI) is run when installed: padded for fixed-length
documents, its list-of-arrays entry point for ragged ones.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

DIM, QUERY_TOKENS, SEED = 128, 32, 0
FLOPS_PER_DOC_TOKEN = 2 * QUERY_TOKENS * DIM


# Document lengths per layout; "scifact" is SciFact's with the default model (title + abstract
# cut at 180 tokens, punctuation dropped: 136..168 tokens from the 5th to the 95th percentile).
LAYOUTS = {"fixed": (128, 129), "ragged": (32, 301), "scifact": (136, 177)}


def make_docs(n_docs: int, layout: str, rng: np.random.Generator, dim: int = DIM):
    lengths = rng.integers(*LAYOUTS[layout], n_docs)
    offsets = np.zeros(n_docs + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    tokens = np.empty((int(offsets[-1]), dim), np.float32)
    step = 1 << 20
    for start in range(0, tokens.shape[0], step):  # chunked: no float64 copy of the whole matrix
        block = rng.standard_normal((min(step, tokens.shape[0] - start), dim), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        tokens[start : start + len(block)] = block
    return tokens, offsets


def numpy_maxsim(query, tokens, offsets):
    scores = np.empty(len(offsets) - 1, np.float32)
    doc, n = 0, len(offsets) - 1
    while doc < n:  # whole documents per chunk, about a million tokens each
        end = int(np.searchsorted(offsets, offsets[doc] + (1 << 20), side="right")) - 1
        end = max(end, doc + 1)
        lo, hi = offsets[doc], offsets[end]
        sims = query @ tokens[lo:hi].T
        scores[doc:end] = np.maximum.reduceat(sims, offsets[doc:end] - lo, axis=1).sum(axis=0)
        doc = end
    return scores


def median_seconds(fn, repeats):
    return interleaved([fn], repeats)[0]


def interleaved(fns, repeats):
    """Median seconds of each function, timed in turn within every repeat."""
    for fn in fns:
        fn()  # warm-up: page faults, thread start-up, caches
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, t in zip(fns, times):
            start = time.perf_counter()
            fn()
            t.append(time.perf_counter() - start)
    return [float(np.median(t)) for t in times]


# maxsim-cpu's ragged entry point pads to the longest document internally: at 100,000
# documents of up to 300 tokens that is ~15 GB, more than this benchmark may take.
MAXSIM_CPU_RAGGED_LIMIT = 20_000


def measure(colmax, maxsim_cpu, query, n_docs, layout, threads, peak, rng, repeats):
    """One table block; every large array is local, so it is freed before the next block."""
    print(f"measuring {n_docs:,} {layout} documents, {threads} thread(s)", file=sys.stderr, flush=True)
    tokens, offsets = make_docs(n_docs, layout, rng)
    total = int(offsets[-1])
    expected = numpy_maxsim(query, tokens, offsets)
    results = {"numpy": median_seconds(lambda: numpy_maxsim(query, tokens, offsets), repeats)}
    values, scales = colmax.quantize_int8(tokens)
    got = colmax.maxsim(query, values, offsets, doc_scales=scales, threads=threads)
    assert np.allclose(got, expected, atol=0.1), "colmax int8 disagrees with NumPy"
    # float32 and int8 alternate, so that their ratio sees the same machine
    results["colmax float32"], results["colmax int8"] = interleaved(
        [
            lambda: colmax.maxsim(query, tokens, offsets, threads=threads),
            lambda: colmax.maxsim(query, values, offsets, doc_scales=scales, threads=threads),
        ],
        repeats,
    )
    for storage in ("float16", "bfloat16"):
        docs = tokens.astype(np.float16) if storage == "float16" else colmax.to_bfloat16(tokens)
        got = colmax.maxsim(query, docs, offsets, threads=threads)
        assert np.allclose(got, expected, atol=0.05), f"colmax {storage} disagrees with NumPy"
        results[f"colmax {storage}"] = median_seconds(
            lambda d=docs: colmax.maxsim(query, d, offsets, threads=threads), repeats
        )
        del docs
    if maxsim_cpu is not None and layout == "fixed":
        padded = tokens.reshape(n_docs, 128, DIM)
        results["maxsim-cpu"] = median_seconds(lambda: maxsim_cpu.maxsim_scores(query, padded), repeats)
    elif maxsim_cpu is not None and n_docs <= MAXSIM_CPU_RAGGED_LIMIT:
        views = [tokens[offsets[i] : offsets[i + 1]] for i in range(n_docs)]
        results["maxsim-cpu"] = median_seconds(
            lambda: maxsim_cpu.maxsim_scores_variable(query, views), repeats
        )
    return [
        {
            "threads": threads,
            "docs": n_docs,
            "layout": layout,
            "scorer": name,
            "seconds": seconds,
            "tokens_per_s": total / seconds,
            "vs_numpy": results["numpy"] / seconds,
            "peak_pct": 100 * total * FLOPS_PER_DOC_TOKEN / seconds / 1e9 / peak if peak else None,
        }
        for name, seconds in results.items()
    ]


def run_worker(args) -> None:
    import colmax
    from colmax import _core

    try:
        import maxsim_cpu
    except ImportError:
        maxsim_cpu = None

    threads = args.worker
    peak = _core.fma_peak_gflops(1.0) * threads
    rng = np.random.default_rng(SEED)
    query = rng.standard_normal((QUERY_TOKENS, DIM), dtype=np.float32)
    query /= np.linalg.norm(query, axis=1, keepdims=True)
    rows = []
    for n_docs in args.sizes:
        for layout in ("fixed", "ragged"):
            rows += measure(colmax, maxsim_cpu, query, n_docs, layout, threads, peak, rng, args.repeats)

    # maxsim_batch: 8 queries in one pass against 8 separate calls (10k ragged documents).
    tokens, offsets = make_docs(min(args.sizes), "ragged", rng)
    queries = [rng.standard_normal((QUERY_TOKENS, DIM), dtype=np.float32) for _ in range(8)]
    batch_rows = []
    for storage in ("float32", "bfloat16"):
        docs = tokens if storage == "float32" else colmax.to_bfloat16(tokens)
        separate = median_seconds(
            lambda d=docs: [colmax.maxsim(q, d, offsets, threads=threads) for q in queries], args.repeats
        )
        batched = median_seconds(
            lambda d=docs: colmax.maxsim_batch(queries, d, offsets, threads=threads), args.repeats
        )
        batch_rows.append({"threads": threads, "storage": storage, "separate": separate, "batch": batched})
    print(
        json.dumps(
            {
                "peak_gflops": peak,
                "isa": colmax.active_isa(),
                "rows": rows,
                "batch": batch_rows,
                "int8": int8_ratios(colmax, args, threads, rng),
            }
        )
    )


def int8_ratios(colmax, args, threads, rng):
    """int8 / float32 doc-tokens per second on the default ISA and each of --isas, alternating
    the two within every repeat: --int8-docs documents of --int8-layout lengths, per --int8-dims."""
    default = colmax.active_isa()
    out = []
    for dim in args.int8_dims:
        tokens, offsets = make_docs(args.int8_docs, args.int8_layout, rng, dim)
        values, scales = colmax.quantize_int8(tokens)
        query = rng.standard_normal((QUERY_TOKENS, dim), dtype=np.float32)
        for isa in dict.fromkeys([default, *args.isas]):
            if isa not in colmax.supported_isas():
                continue
            colmax.set_active_isa(isa)
            f32, i8 = interleaved(
                [
                    lambda q=query, t=tokens, o=offsets: colmax.maxsim(q, t, o, threads=threads),
                    lambda q=query, v=values, o=offsets, s=scales: colmax.maxsim(
                        q, v, o, doc_scales=s, threads=threads
                    ),
                ],
                2 * args.repeats + 1,
            )
            row = {"isa": isa, "dim": dim, "threads": threads, "float32": f32, "int8": i8}
            out.append(row | {"tokens": int(offsets[-1])})
        colmax.set_active_isa(default)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000", help="document counts, comma-separated")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", default="1,2", help="thread counts, comma-separated")
    parser.add_argument(
        "--isas", default="avx2", help="instruction sets to compare int8 with float32 on, beside the default"
    )
    parser.add_argument("--int8-dims", default="128", help="dimensions of the int8 / float32 table")
    parser.add_argument("--int8-docs", type=int, default=10000, help="documents of the int8 / float32 table")
    parser.add_argument("--int8-layout", default="fixed", choices=sorted(LAYOUTS), help="their lengths")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.isas = [i for i in args.isas.split(",") if i]
    args.int8_dims = [int(d) for d in args.int8_dims.split(",")]
    if args.worker:
        run_worker(args)
        return

    import colmax

    cpu = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
        "?",
    )
    flags = next((line for line in open("/proc/cpuinfo") if line.startswith("flags")), "").split()
    extensions = [f for f in ("avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8") if f in flags]
    print(f"colmax {colmax.__version__}, ISA {colmax.active_isa()}, {cpu}, {os.cpu_count()} CPUs")
    print(f"CPU extensions: {', '.join(extensions) or 'none of AVX-512, VNNI, AMX'}")
    print(f"query {QUERY_TOKENS} x {DIM}, normalised random vectors, median of {args.repeats}\n")
    header = "| threads | docs | layout | scorer | median ms | M doc-tokens/s | vs NumPy | % FMA peak |"
    print(header)
    print("|---|---|---|---|---|---|---|---|")
    batches, ratios = [], []
    for threads in (int(t) for t in args.threads.split(",")):
        env = dict(
            os.environ,
            OMP_NUM_THREADS=str(threads),
            OPENBLAS_NUM_THREADS=str(threads),
            RAYON_NUM_THREADS=str(threads),
        )
        cmd = [
            sys.executable,
            __file__,
            "--worker",
            str(threads),
            "--sizes",
            ",".join(map(str, args.sizes)),
            "--repeats",
            str(args.repeats),
            "--isas",
            ",".join(args.isas),
            "--int8-dims",
            ",".join(map(str, args.int8_dims)),
            "--int8-docs",
            str(args.int8_docs),
            "--int8-layout",
            args.int8_layout,
        ]
        out = json.loads(subprocess.run(cmd, env=env, check=True, stdout=subprocess.PIPE, text=True).stdout)
        for r in out["rows"]:
            peak = f"{r['peak_pct']:.0f}%" if r["peak_pct"] is not None else "n/a"
            cells = [r["threads"], f"{r['docs']:,}", r["layout"], r["scorer"], f"{1000 * r['seconds']:.1f}"]
            cells += [f"{r['tokens_per_s'] / 1e6:.1f}", f"{r['vs_numpy']:.2f}x", peak]
            print("| " + " | ".join(map(str, cells)) + " |")
        batches += [(out["peak_gflops"], b) for b in out["batch"]]
        ratios += out["int8"]
    print("\nmaxsim_batch, 8 queries of 32 tokens, 10,000 ragged documents\n")
    print("| threads | storage | 8 calls ms | one batch ms | speed-up |")
    print("|---|---|---|---|---|")
    for _, b in batches:
        print(
            f"| {b['threads']} | {b['storage']} | {1000 * b['separate']:.1f} | {1000 * b['batch']:.1f} "
            f"| {b['separate'] / b['batch']:.2f}x |"
        )
    print(
        "\n1-core FMA peak (GFLOP/s, measured per worker): " + ", ".join(f"{p:.0f}" for p, _ in batches[::2])
    )
    low, high = LAYOUTS[args.int8_layout]
    lengths = f"{low}..{high - 1}"
    print(
        f"\nint8 against float32, {args.int8_docs:,} documents of {lengths} tokens ({args.int8_layout}), "
        f"alternating calls ({cpu})\n"
    )
    print("| ISA | dim | threads | float32 M doc-tokens/s | int8 M doc-tokens/s | int8 / float32 |")
    print("|---|---|---|---|---|---|")
    for r in ratios:
        f32, i8 = r["tokens"] / r["float32"] / 1e6, r["tokens"] / r["int8"] / 1e6
        cells = [
            r["isa"],
            r["dim"],
            r["threads"],
            f"{f32:.1f}",
            f"{i8:.1f}",
            f"{r['float32'] / r['int8']:.2f}x",
        ]
        print("| " + " | ".join(map(str, cells)) + " |")


if __name__ == "__main__":
    main()
