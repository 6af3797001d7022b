"""colmax.Encoder with the packaged default model: semantics, output layout, bad input."""

from __future__ import annotations

import json

import colmax
import numpy as np
import pytest
from colmax.encoding.default_model import default_model_dir
from colmax.encoding.models import ModelFormatError


@pytest.fixture(scope="module")
def encoder() -> colmax.Encoder:
    return colmax.Encoder()


def test_seed_case_paris_outscores_berlin(encoder):
    q = encoder.encode_queries(["What is the capital of France?"])
    docs = encoder.encode_documents(["Paris is the capital of France.", "Berlin is the capital of Germany."])
    paris, berlin = colmax.maxsim(q[0], docs)
    assert paris > berlin


def test_attributes(encoder):
    assert encoder.dim == 384
    assert encoder.query_length == 512 and encoder.document_length == 180
    assert encoder.name == "colmax/minilm-l6-v2"
    assert encoder.onnx_path.name == "model_int8.onnx"


def test_ragged_layout_and_input_order(encoder):
    texts = ["a much longer document about late interaction retrieval models", "short", "medium text here"]
    docs = encoder.encode_documents(texts, batch_size=2, progress=True)
    assert isinstance(docs, colmax.Ragged) and len(docs) == 3
    assert docs.tokens.dtype == np.float32 and docs.tokens.flags.c_contiguous
    assert docs.offsets.dtype == np.int64
    np.testing.assert_allclose(np.linalg.norm(docs.tokens, axis=1), 1, atol=1e-5)
    # one at a time gives the same lengths in the same order (batches are sorted internally)
    singles = [encoder.encode_documents([t]) for t in texts]
    assert docs.lengths.tolist() == [len(s.tokens) for s in singles]
    for i, single in enumerate(singles):
        # dynamic int8 quantizes activations per batch: close, not bit-equal
        assert np.mean(np.sum(docs[i] * single.tokens, axis=1)) > 0.97


def test_fp32_is_batch_invariant():
    enc = colmax.Encoder(int8=False)
    texts = ["one two three four five six", "tiny", "a b"]
    together = enc.encode_documents(texts, batch_size=3)
    for i, text in enumerate(texts):
        np.testing.assert_allclose(together[i], enc.encode_documents([text]).tokens, atol=1e-4)


def test_long_texts_are_truncated(encoder):
    docs = encoder.encode_documents(["word " * 2000])
    assert docs.lengths[0] == encoder.document_length
    q = encoder.encode_queries(["word " * 2000])
    assert q.lengths[0] == encoder.query_length


def test_overrides(encoder):
    enc = colmax.Encoder(query_length=32, do_query_expansion=True)
    assert enc.encode_queries(["hi"]).lengths.tolist() == [32]


def test_bad_input(encoder, tmp_path):
    with pytest.raises(ValueError, match="empty"):
        encoder.encode_documents([])
    with pytest.raises(TypeError, match="not one string"):
        encoder.encode_queries("one string")
    with pytest.raises(TypeError, match=r"texts\[0\] is NoneType"):
        encoder.encode_documents([None])
    with pytest.raises(FileNotFoundError):
        colmax.Encoder(tmp_path / "missing")
    with pytest.raises(ModelFormatError, match=r"no model\.onnx"):
        colmax.Encoder(tmp_path)
    # a foreign file where the ONNX model should be
    (tmp_path / "model.onnx").write_bytes(b"not an onnx model")
    (tmp_path / "tokenizer.json").write_text("{}")
    (tmp_path / "onnx_config.json").write_text(json.dumps({"query_length": 32}))
    with pytest.raises(ModelFormatError):
        colmax.Encoder(tmp_path)


def test_default_model_is_built_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COLMAX_CACHE_DIR", str(tmp_path))
    directory = default_model_dir()
    assert directory.parent == tmp_path / "models"
    assert {p.name for p in directory.iterdir()} == {
        "model.onnx",
        "model_int8.onnx",
        "tokenizer.json",
        "onnx_config.json",
    }
    assert [p.name for p in (tmp_path / "models").iterdir()] == [directory.name]  # no leftovers
    assert default_model_dir() == directory  # built once
