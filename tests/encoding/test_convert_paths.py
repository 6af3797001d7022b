"""colmax convert's other paths: length overrides and their limit, composed Dense layers, refused
Dense layers, the 0_Transformer layout, pytorch_model.bin and sharded weights, weights that do
not fit their config, and a failed or repeated conversion into the same directory."""

from __future__ import annotations

import json
import shutil

import colmax
import numpy as np
import onnxruntime as ort
import pytest
from colmax.cli import main as cli_main
from colmax.encoding.convert import convert
from colmax.encoding.models import ModelFormatError
from colmax.encoding.onnx_builder import UnsupportedModelError
from colmax.encoding.weights import write_safetensors
from tiny_checkpoints import (
    VOCAB,
    bert_forward,
    random_bert,
    tiny_config,
    write_hf,
    write_pylate,
    write_stanford,
    write_torch_bin,
)

IDS = np.array([[4, 50, 51, 52, 5, 0], [4, 53, 5, 0, 0, 0]], dtype=np.int64)
MASK = (np.arange(6) < np.array([[5], [3]])).astype(np.int64)
TEXTS = ["what is the capital of france?", "paris, berlin: germany!", "late interaction"]
PYLATE = {"query_prefix": "[Q] ", "document_prefix": "[D] ", "query_length": 10, "document_length": 24}


def matrix(rows: int, cols: int, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((rows, cols)) / np.sqrt(cols)).astype(np.float32)


def graph_output(model_dir) -> np.ndarray:
    session = ort.InferenceSession(str(model_dir / "model.onnx"))
    return session.run(None, {"input_ids": IDS, "attention_mask": MASK})[0]


def same_encoder(a, b) -> None:
    """Two model directories encode TEXTS to identical vectors."""
    x, y = colmax.Encoder(a).encode_documents(TEXTS), colmax.Encoder(b).encode_documents(TEXTS)
    np.testing.assert_array_equal(x.offsets, y.offsets)
    np.testing.assert_array_equal(x.tokens, y.tokens)


def pylate(directory, dense: list[np.ndarray], config=None, seed=0):
    """A PyLate checkpoint whose projection is the Dense layers ``dense`` in order."""
    config = config or tiny_config(vocab_size=len(VOCAB) + 2)
    src = write_pylate(directory, config, random_bert(config, seed), dense[0], PYLATE)
    for i, w in enumerate(dense[1:], start=2):
        layer = src / f"{i}_Dense"
        layer.mkdir()
        (layer / "config.json").write_text(
            json.dumps({"in_features": w.shape[1], "out_features": w.shape[0]})
        )
        write_safetensors(layer / "model.safetensors", {"linear.weight": w})
    return src


# -- lengths


def test_length_overrides_and_the_position_limit(tmp_path, capsys):
    config = tiny_config()  # 64 positions
    meta = {"query_maxlen": 12, "doc_maxlen": 20}
    src = write_stanford(tmp_path / "s", config, random_bert(config), matrix(16, 32, 1), meta)
    enc = colmax.Encoder(convert(src, tmp_path / "out", query_length=16, document_length=64))
    assert (enc.query_length, enc.document_length) == (16, 64)  # exactly at the limit is fine
    assert enc.encode_queries(["paris"]).lengths.tolist() == [16]
    assert enc.encode_documents(["paris " * 100]).lengths.tolist() == [64]
    with pytest.raises(ModelFormatError, match="document_length 65 exceeds the model's 64 positions"):
        convert(src, tmp_path / "over", document_length=65)
    assert not (tmp_path / "over").exists()
    code = cli_main(["convert", str(src), str(tmp_path / "over"), "--query-length", "65"])
    assert code == 2 and "query_length 65 exceeds the model's 64 positions" in capsys.readouterr().err
    assert not (tmp_path / "over").exists()  # so a corrected run needs no --force
    assert cli_main(["convert", str(src), str(tmp_path / "over"), "--query-length", "64"]) == 0


def test_plain_encoder_document_length_is_capped_by_positions(tmp_path):
    src = write_hf(tmp_path / "hf", tiny_config(), random_bert(tiny_config()))
    enc = colmax.Encoder(convert(src, tmp_path / "out"))
    assert (enc.query_length, enc.document_length) == (64, 64)  # default 180 is past the 64 positions


# -- Dense layers


def test_dense_layers_compose(tmp_path):
    w1, w2 = matrix(24, 32, 1), matrix(16, 24, 2)
    src = pylate(tmp_path / "p", [w1, w2])
    dst = convert(src, tmp_path / "out")
    config = tiny_config(vocab_size=len(VOCAB) + 2)
    hidden = bert_forward(config, random_bert(config, 0), IDS, MASK)
    want = hidden @ (w2.astype(np.float64) @ w1).T
    want /= np.linalg.norm(want, axis=-1, keepdims=True)
    got = graph_output(dst)
    assert got.shape == (2, 6, 16) and colmax.Encoder(dst).dim == 16
    np.testing.assert_allclose(got[MASK > 0], want[MASK > 0], atol=2e-5)


def test_dense_layers_that_do_not_chain_are_refused(tmp_path):
    src = pylate(tmp_path / "p", [matrix(24, 32, 1), matrix(16, 20, 2)])
    with pytest.raises(
        ModelFormatError, match="2_Dense maps 20 dimensions but the layer before it outputs 24"
    ):
        convert(src, tmp_path / "out")


@pytest.mark.parametrize(
    "change, error, match",
    [
        ({"activation_function": "torch.nn.modules.activation.Tanh"}, UnsupportedModelError, "Tanh"),
        ({"bias": True}, UnsupportedModelError, "has a bias"),
        ({"no_weight": True}, ModelFormatError, "no 2-D float tensor linear.weight"),
    ],
)
def test_dense_layers_colmax_cannot_build_are_refused(tmp_path, change, error, match):
    src = pylate(tmp_path / "p", [matrix(16, 32, 1)])
    dense = src / "1_Dense"
    config = json.loads((dense / "config.json").read_text())
    config.update({k: v for k, v in change.items() if k == "activation_function"})
    (dense / "config.json").write_text(json.dumps(config))
    if change.get("bias"):
        bias = np.full(16, 0.5, dtype=np.float32)
        write_safetensors(
            dense / "model.safetensors", {"linear.weight": matrix(16, 32, 1), "linear.bias": bias}
        )
    if change.get("no_weight"):
        write_safetensors(dense / "model.safetensors", {"weight": matrix(16, 32, 1)})
    with pytest.raises(error, match=match):
        convert(src, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_zero_bias_is_accepted(tmp_path):
    w = matrix(16, 32, 1)
    plain = convert(pylate(tmp_path / "plain", [w]), tmp_path / "plain-out")
    src = pylate(tmp_path / "bias", [w])
    write_safetensors(
        src / "1_Dense" / "model.safetensors", {"linear.weight": w, "linear.bias": np.zeros(16, np.float32)}
    )
    same_encoder(convert(src, tmp_path / "bias-out"), plain)


# -- layouts and weight files


def test_zero_transformer_layout(tmp_path):
    root_layout = pylate(tmp_path / "root", [matrix(16, 32, 1)])
    nested = tmp_path / "nested"
    (nested / "0_Transformer").mkdir(parents=True)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "vocab.txt"):
        shutil.copy(root_layout / name, nested / "0_Transformer" / name)
    for name in ("modules.json", "config_sentence_transformers.json"):
        shutil.copy(root_layout / name, nested / name)
    shutil.copytree(root_layout / "1_Dense", nested / "1_Dense")
    assert not (nested / "config.json").exists()
    same_encoder(convert(nested, tmp_path / "nested-out"), convert(root_layout, tmp_path / "root-out"))


def test_pytorch_model_bin_as_the_weights(tmp_path):
    w = matrix(16, 32, 1)
    from_safetensors = convert(pylate(tmp_path / "st", [w]), tmp_path / "st-out")
    src = pylate(tmp_path / "bin", [w])
    config = tiny_config(vocab_size=len(VOCAB) + 2)
    (src / "model.safetensors").unlink()
    write_torch_bin(src / "pytorch_model.bin", random_bert(config, 0))
    (src / "1_Dense" / "model.safetensors").unlink()
    write_torch_bin(src / "1_Dense" / "pytorch_model.bin", {"linear.weight": w})
    same_encoder(convert(src, tmp_path / "bin-out"), from_safetensors)


def test_sharded_safetensors_as_the_weights(tmp_path):
    weights = random_bert(tiny_config())
    single = convert(write_hf(tmp_path / "single", tiny_config(), weights), tmp_path / "single-out")
    src = write_hf(tmp_path / "sharded", tiny_config(), weights)
    (src / "model.safetensors").unlink()
    names = sorted(weights)
    shards = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    for shard, keys in shards.items():
        write_safetensors(src / shard, {k: weights[k] for k in keys})
    weight_map = {k: shard for shard, keys in shards.items() for k in keys}
    (src / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    same_encoder(convert(src, tmp_path / "sharded-out"), single)


# -- weights that do not fit the config


@pytest.mark.parametrize(
    "name, value, match",
    [
        (
            "embeddings.word_embeddings.weight",
            np.zeros((10, 32), np.float32),
            rf"\(10, 32\).*\({len(VOCAB)}, 32\)",
        ),
        ("embeddings.position_embeddings.weight", np.zeros((32, 32), np.float32), r"\(64, 32\)"),
        ("encoder.layer.1.intermediate.dense.weight", np.zeros((64, 31), np.float32), r"\(64, 32\)"),
        ("encoder.layer.0.attention.self.key.bias", np.zeros((32, 1), np.float32), r"\(32,\)"),
        ("encoder.layer.0.output.LayerNorm.weight", np.zeros(32, np.int64), "int64"),
    ],
)
def test_weights_that_do_not_fit_the_config(tmp_path, capsys, name, value, match):
    weights = random_bert(tiny_config())
    weights[name] = value
    src = write_hf(tmp_path / "hf", tiny_config(), weights)
    with pytest.raises(ModelFormatError, match=match):
        convert(src, tmp_path / "out")
    assert cli_main(["convert", str(src), str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.startswith(f"colmax convert: error: checkpoint tensor '{name}'")


def test_a_tokenizer_larger_than_the_embedding_table(tmp_path):
    # PyLate adds [Q] and [D] to the tokenizer; a checkpoint whose table was not grown is broken
    config = tiny_config()
    src = write_pylate(tmp_path / "p", config, random_bert(config), matrix(16, 32, 1), PYLATE)
    with pytest.raises(
        ModelFormatError,
        match=f"tokenizer has {len(VOCAB) + 2} tokens but the embedding table only {len(VOCAB)} rows",
    ):
        convert(src, tmp_path / "out")


# -- writing the destination


def test_overwriting_replaces_every_file_of_the_earlier_conversion(tmp_path):
    first = write_hf(tmp_path / "first", tiny_config(), random_bert(tiny_config(), 0))
    second = write_hf(tmp_path / "second", tiny_config(), random_bert(tiny_config(), 1))
    dst = convert(first, tmp_path / "out", quantize="int8")
    assert (dst / "model_int8.onnx").exists()
    convert(second, dst, overwrite=True)
    # the earlier int8 file would be preferred by the Encoder and encode with the old weights
    assert sorted(p.name for p in dst.iterdir()) == ["model.onnx", "onnx_config.json", "tokenizer.json"]
    same_encoder(dst, convert(second, tmp_path / "fresh"))


def test_a_failed_overwrite_leaves_the_destination_as_it_was(tmp_path):
    src = write_hf(tmp_path / "hf", tiny_config(), random_bert(tiny_config()))
    dst = convert(src, tmp_path / "out")
    before = {p.name: p.read_bytes() for p in dst.iterdir()}
    with pytest.raises(ModelFormatError):
        convert(src, dst, overwrite=True, query_length=1000)
    assert {p.name: p.read_bytes() for p in dst.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf", "out"]  # no staging directory left
    with pytest.raises(ValueError, match="the checkpoint itself"):
        convert(src, src, overwrite=True)
