"""Passage strides compared through the command line: for each data set, an exact float32 index
per passage stride (and one with --truncate), each evaluated by `colmax eval --mode all`.

    python benchmarks/eval_passages.py [--data ../shared/data] [--datasets scifact cranfield]
                                       [--strides 89 133 178]

The default model's passages hold 178 text tokens: stride 133 (the default, 3/4) overlaps them
by a quarter, 89 by half, 178 not at all. Prints nDCG@10 and Recall@100 per mode, and the
passages and token vectors each index holds. The default model quantizes activations per batch,
so a document's vectors depend slightly on its batch-mates; every build here encodes the first
passages in the batches --truncate uses (and the continuing ones apart), so the first passages
are the same vectors in every row and the rows differ by the continuing passages alone. Other
builds of one corpus (another order, another batch size) move Cranfield by up to 0.004 nDCG@10
(README, Evaluation).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MODES = ("semantic", "keyword", "hybrid")


def colmax(*args: str) -> str:
    command = [sys.executable, "-m", "colmax", *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def build_and_evaluate(data: Path, out: Path, extra: list[str]) -> dict:
    exact = ["--kind", "exact", "--storage", "float32", "--no-progress"]
    built = colmax("index", str(data), "-o", str(out), *exact, *extra)
    passages = re.search(r"as ([\d,]+) passages", built)
    vectors = re.search(r"\(([\d,]+) token vectors", built)
    evaluation = colmax(
        "eval", str(out), "--queries", str(data / "queries.jsonl"), "--qrels", str(data / "qrels.tsv"),
        "--mode", "all", "--json", "--no-progress",
    )  # fmt: skip
    result = json.loads(evaluation)
    result["passages"] = passages.group(1) if passages else "one per document"
    result["vectors"] = vectors.group(1) if vectors else "?"
    return result


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--datasets", nargs="+", default=["scifact", "cranfield"])
    parser.add_argument("--strides", nargs="+", type=int, default=[89, 133, 178])
    args = parser.parse_args()
    heads = " | ".join(f"{m} nDCG@10 / R@100" for m in MODES)
    print(f"| data set | passages | token vectors | {heads} |")
    print("|---" * (3 + len(MODES)) + "|")
    for name in args.datasets:
        data = args.data / name
        settings = [(f"stride {s}", ["--passage-stride", str(s)]) for s in args.strides]
        settings.append(("--truncate", ["--truncate"]))
        for label, extra in settings:
            with tempfile.TemporaryDirectory(prefix="colmax-passages-") as tmp:
                r = build_and_evaluate(data, Path(tmp) / "index", extra)
            cells = [f"{r['modes'][m]['ndcg@10']:.4f} / {r['modes'][m]['recall@100']:.4f}" for m in MODES]
            row = f"| {name}, {label} | {r['passages']} | {r['vectors']} | " + " | ".join(cells) + " |"
            print(row, flush=True)


if __name__ == "__main__":
    main()
