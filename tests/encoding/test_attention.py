"""Attention fused into MultiHeadAttention at load (encoding/attention.py): the same vectors as the
graph as written, on the packaged int8 model and a converted float32 one, padding included; blocks
that differ from the pattern stay as they are; the model file is never touched."""

from __future__ import annotations

import hashlib
from pathlib import Path

import colmax
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from colmax.encoding.attention import fuse_attention, fused_model
from tiny_checkpoints import tiny_model

TEXTS = [
    "What is the capital of France?",
    "a",
    "Late interaction retrieval keeps one vector per token and scores each query token against "
    "every document token, summing the best matches.",
    "Vitamin D deficiency is associated with lower bone density in older adults.",
]


def _run(model, ids: np.ndarray, attention: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    return session.run(["output"], {"input_ids": ids, "attention_mask": attention})[0]


def _padded(encoder: colmax.Encoder) -> tuple[np.ndarray, np.ndarray]:
    """The TEXTS as one batch padded (attention 0) to three past the longest."""
    items = encoder.tokenizer.documents(TEXTS)
    ids = np.full((len(TEXTS), max(len(i) for i in items.ids) + 3), encoder.tokenizer.pad_id, np.int64)
    attention = np.zeros_like(ids)
    for row, item in enumerate(items.ids):
        ids[row, : len(item)] = item
        attention[row, : len(item)] = 1
    return ids, attention


def _compare(onnx_path: Path, encoder: colmax.Encoder, layers: int, atol: float) -> None:
    model = onnx.load(str(onnx_path))
    assert fuse_attention(model) == layers
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("MultiHeadAttention") == layers and "Softmax" not in ops and "Transpose" not in ops
    ids, attention = _padded(encoder)
    fused, plain = _run(model.SerializeToString(), ids, attention), _run(str(onnx_path), ids, attention)
    mask = attention.astype(bool)  # padded positions' vectors are never returned
    np.testing.assert_allclose(fused[mask], plain[mask], atol=atol, rtol=0)
    for row in range(len(TEXTS)):  # one at a time, no padding: what a search encodes
        n = int(attention[row].sum())
        one = ids[row : row + 1, :n], np.ones((1, n), np.int64)
        np.testing.assert_allclose(
            _run(model.SerializeToString(), *one), _run(str(onnx_path), *one), atol=atol, rtol=0
        )


def test_default_model_fused_gives_the_same_vectors():
    encoder = colmax.Encoder()
    # int8: an activation rounding elsewhere would move a vector by ~1e-3; bit-equal on the CPUs measured
    _compare(encoder.onnx_path, encoder, layers=6, atol=1e-5)


def test_converted_float32_model_fused_gives_the_same_vectors(tmp_path):
    encoder = colmax.Encoder(tiny_model(tmp_path / "tiny"))
    layers = sum(1 for n in onnx.load(str(encoder.onnx_path)).graph.node if n.op_type == "Softmax")
    assert layers >= 1
    _compare(encoder.onnx_path, encoder, layers=layers, atol=1e-6)


def test_encoder_loads_the_fused_graph_and_leaves_the_file_alone():
    encoder = colmax.Encoder()
    before = hashlib.sha256(encoder.onnx_path.read_bytes()).hexdigest()
    loaded = fused_model(encoder.onnx_path)
    assert isinstance(loaded, bytes)
    ops = [n.op_type for n in onnx.load_from_string(loaded).graph.node]
    assert ops.count("MultiHeadAttention") == 6
    q = colmax.Encoder().encode_queries(TEXTS)  # sessions made after the check above
    assert hashlib.sha256(encoder.onnx_path.read_bytes()).hexdigest() == before
    assert q.lengths.tolist() == [len(i) for i in encoder.tokenizer.queries(TEXTS).ids]


def test_a_block_off_the_pattern_is_left_alone():
    model = onnx.load(str(colmax.Encoder().onnx_path))
    # the first layer's attention probabilities become an output too: that block cannot fuse
    softmax = next(n for n in model.graph.node if n.op_type == "Softmax")
    probabilities = onnx.helper.make_tensor_value_info(softmax.output[0], onnx.TensorProto.FLOAT, None)
    model.graph.output.append(probabilities)
    assert fuse_attention(model) == 5
    assert [n.op_type for n in model.graph.node].count("Softmax") == 1


def test_a_graph_without_the_pattern_loads_from_its_path(tmp_path):
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4])
    graph = onnx.helper.make_graph([onnx.helper.make_node("Softmax", ["x"], ["y"])], "g", [x], [y])
    path = tmp_path / "softmax.onnx"
    onnx.save(onnx.helper.make_model(graph), str(path))
    assert fused_model(path) == str(path)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    assert fused_model(garbage) == str(garbage)  # the session reports it, as before


@pytest.mark.parametrize("expansion", [False, True])
def test_encode_tokenized_equals_encode_queries(expansion, tmp_path):
    encoder = colmax.Encoder(tiny_model(tmp_path / "tiny"), do_query_expansion=expansion)
    texts = TEXTS[:1] if expansion else TEXTS  # one query: the tokenizer's single-text path too
    direct = encoder.encode_queries(texts)
    via = encoder.encode_tokenized(encoder.tokenizer.queries(texts))
    np.testing.assert_array_equal(direct.offsets, via.offsets)
    np.testing.assert_array_equal(direct.tokens, via.tokens)
