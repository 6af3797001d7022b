"""Parity with colbert-ai and PyLate: golden vectors from scripts/make_parity_fixtures.py.

The checkpoints are rebuilt here without torch (MiniLM weights + the seeded projection), converted
with `colmax convert`, and colmax's vectors must equal the references' within 1e-4 with the same
token counts. A fixture missing because its reference could not be installed is skipped.
"""

from __future__ import annotations

import json
from pathlib import Path

import colmax
import numpy as np
import pytest
from colmax.cli import main as cli_main
from colmax.encoding.weights import read_torch_bin
from tiny_checkpoints import parity_pylate, parity_stanford

FIXTURES = Path(__file__).parent / "fixtures"
TEXTS = json.loads((FIXTURES / "parity_texts.json").read_text(encoding="utf-8"))
LAYOUTS = {"stanford": parity_stanford, "pylate": parity_pylate}


@pytest.fixture(scope="module", params=sorted(LAYOUTS))
def converted(request, tmp_path_factory):
    name = request.param
    golden = FIXTURES / f"parity_{name}.npz"
    if not golden.exists():
        pytest.skip(f"{golden.name} not generated (its reference implementation was not installable)")
    root = tmp_path_factory.mktemp(name)
    src = LAYOUTS[name](root / "checkpoint")
    assert cli_main(["convert", str(src), str(root / "colmax")]) == 0
    return name, colmax.Encoder(root / "colmax"), np.load(golden)


def _check(ours: colmax.Ragged, golden, side: str) -> None:
    offsets = golden[f"{side}_offsets"]
    assert ours.offsets.tolist() == offsets.tolist(), f"{side}: token counts differ"
    np.testing.assert_allclose(ours.tokens, golden[f"{side}_tokens"], atol=1e-4, rtol=0)


def test_queries_match_reference(converted):
    _, encoder, golden = converted
    _check(encoder.encode_queries(TEXTS["queries"]), golden, "queries")


def test_documents_match_reference(converted):
    _, encoder, golden = converted
    _check(encoder.encode_documents(TEXTS["documents"], batch_size=4), golden, "documents")


def test_torch_state_dict_reader():
    path = FIXTURES / "torch_state_dict.bin"
    if not path.exists():
        pytest.skip("torch_state_dict.bin not generated")
    state = read_torch_bin(path)
    np.testing.assert_array_equal(state["f32"], np.arange(6, dtype=np.float32).reshape(2, 3))
    np.testing.assert_array_equal(state["f16"], np.arange(4, dtype=np.float16) / 4)
    np.testing.assert_array_equal(state["bf16"], np.array([1.5, -2.0], dtype=np.float32))
    np.testing.assert_array_equal(state["i64"], [7, -8])
    np.testing.assert_array_equal(state["transposed"], np.arange(6, dtype=np.float32).reshape(2, 3).T)
    np.testing.assert_array_equal(state["shared_view"], [4, 5, 6])
