"""Golden vectors from the reference ColBERT implementations, for tests/test_parity.py.

Three steps, each in the environment that has what it needs:

    # 1. colmax's environment: write the two checkpoints (MiniLM + seeded 384->128 projection)
    python scripts/make_parity_fixtures.py checkpoints /tmp/parity
    # 2. colbert-ai 0.2.22 (needs transformers 4.x: its own venv, torch==2.13.0 CPU)
    /tmp/colbert-venv/bin/python scripts/make_parity_fixtures.py colbert /tmp/parity
    # 3. PyLate (pip install torch==2.13.0, then pylate; see docs/models.md)
    /tmp/pylate-venv/bin/python scripts/make_parity_fixtures.py pylate /tmp/parity

Steps 2 and 3 import only torch and the reference, never colmax, and write
tests/encoding/fixtures/parity_{stanford,pylate}.npz: per side (queries, documents) the token vectors
back to back plus offsets. Step 3 also writes tests/encoding/fixtures/torch_state_dict.bin, a tiny
torch.save file that checks colmax's torch-free reader.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "encoding" / "fixtures"

QUERIES = [
    "What is the capital of France?",
    "colbert",
    "Ünïcödé café — naïve résumé in 東京?",
    "!!! ??? ... (a), [b], {c}; e.g.: x/y -- 'quoted' \"text\"",
    " ".join(["a very long query that goes on and on about late interaction retrieval"] * 6),
]
DOCUMENTS = [
    "Paris is the capital of France.",
    "Berlin is the capital of Germany.",
    "word",
    "Hello, world!!! (Really?) Yes: it's -- well... #1 @home & 100% [sure]; {ok} <fine>.",
    "Ünïcödé naïve café: résumé, Zürich, São Paulo, 東京, Москва, Αθήνα.",
    " ".join(
        f"Sentence {i} of a very long document, about ColBERT's late interaction and MaxSim."
        for i in range(60)
    ),
]


def write_checkpoints(out: Path) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from tiny_checkpoints import parity_pylate, parity_stanford

    parity_stanford(out / "stanford")
    parity_pylate(out / "pylate")
    FIXTURES.mkdir(parents=True, exist_ok=True)
    (FIXTURES / "parity_texts.json").write_text(
        json.dumps({"queries": QUERIES, "documents": DOCUMENTS}, ensure_ascii=False, indent=1) + "\n",
        encoding="utf-8",
    )
    print(f"wrote {out / 'stanford'}, {out / 'pylate'} and {FIXTURES / 'parity_texts.json'}")


def save(name: str, queries: list[np.ndarray], documents: list[np.ndarray]) -> None:
    arrays = {}
    for side, mats in (("queries", queries), ("documents", documents)):
        mats = [np.asarray(m, dtype=np.float32) for m in mats]
        arrays[f"{side}_tokens"] = np.concatenate(mats)
        arrays[f"{side}_offsets"] = np.concatenate([[0], np.cumsum([len(m) for m in mats])]).astype(np.int64)
    np.savez_compressed(FIXTURES / f"parity_{name}.npz", **arrays)
    print(
        f"wrote {FIXTURES / f'parity_{name}.npz'}: query lengths {[len(m) for m in queries]}, "
        f"document lengths {[len(m) for m in documents]}"
    )


def run_colbert(out: Path) -> None:
    import torch
    from colbert.infra import ColBERTConfig
    from colbert.modeling.checkpoint import Checkpoint

    torch.manual_seed(0)
    ckpt = Checkpoint(str(out / "stanford"), colbert_config=ColBERTConfig(checkpoint=str(out / "stanford")))
    ckpt.eval()
    with torch.inference_mode():
        q = ckpt.queryFromText(QUERIES)  # (n, query_maxlen, dim): every position kept
        ids, mask = ckpt.doc_tokenizer.tensorize(DOCUMENTS)
        d, keep = ckpt.doc(ids, mask, keep_dims="return_mask")
    docs = [d[i][keep[i].squeeze(-1).bool()].float().numpy() for i in range(len(DOCUMENTS))]
    save("stanford", [m.float().numpy() for m in q], docs)


def run_pylate(out: Path) -> None:
    import torch
    from pylate import models

    model = models.ColBERT(model_name_or_path=str(out / "pylate"), device="cpu")
    model.eval()
    q = model.encode(QUERIES, is_query=True, convert_to_numpy=True)
    d = model.encode(DOCUMENTS, is_query=False, convert_to_numpy=True)
    save("pylate", list(q), list(d))

    # a tiny torch.save state dict for colmax's torch-free reader (values: see test_parity.py)
    state = {
        "f32": torch.arange(6, dtype=torch.float32).reshape(2, 3),
        "f16": torch.arange(4, dtype=torch.float16) / 4,
        "bf16": torch.tensor([1.5, -2.0], dtype=torch.bfloat16),
        "i64": torch.tensor([7, -8], dtype=torch.int64),
        "transposed": torch.arange(6, dtype=torch.float32).reshape(2, 3).t(),
        "shared_view": torch.arange(10, dtype=torch.float32)[4:7],
    }
    torch.save(state, FIXTURES / "torch_state_dict.bin")
    print(f"wrote {FIXTURES / 'torch_state_dict.bin'}")


def main() -> None:
    if len(sys.argv) != 3 or sys.argv[1] not in ("checkpoints", "colbert", "pylate"):
        sys.exit(__doc__)
    step, out = sys.argv[1], Path(sys.argv[2])
    {"checkpoints": write_checkpoints, "colbert": run_colbert, "pylate": run_pylate}[step](out)


if __name__ == "__main__":
    main()
