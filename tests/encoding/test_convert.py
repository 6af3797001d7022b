"""colmax convert on tiny random checkpoints: graph vs a NumPy BERT, the three layouts, int8, errors."""

from __future__ import annotations

import json

import colmax
import numpy as np
import onnxruntime as ort
import pytest
from colmax.cli import main as cli_main
from colmax.encoding.convert import convert, detect
from colmax.encoding.models import ModelFormatError
from colmax.encoding.onnx_builder import UnsupportedModelError, build_bert_onnx
from colmax.encoding.weights import read_safetensors, write_safetensors
from tiny_checkpoints import (
    VOCAB,
    bert_forward,
    random_bert,
    tiny_config,
    write_hf,
    write_pylate,
    write_stanford,
)

TEXTS = ["what is the capital of france?", "paris, berlin: germany!", "late interaction", ""]


def projection(dim: int = 16, hidden: int = 32, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((dim, hidden)).astype(np.float32) / np.sqrt(hidden)


@pytest.mark.parametrize("act", ["gelu", "gelu_new", "gelu_pytorch_tanh", "relu"])
def test_graph_matches_numpy_bert(act):
    config = tiny_config(hidden_act=act)
    weights = random_bert(config)
    ids = np.array([[4, 50, 51, 52, 5, 0], [4, 53, 5, 0, 0, 0]], dtype=np.int64)
    mask = (np.arange(6) < np.array([[5], [3]])).astype(np.int64)
    model = build_bert_onnx(config, weights, normalize=False)
    got = ort.InferenceSession(model.SerializeToString()).run(
        None, {"input_ids": ids, "attention_mask": mask}
    )[0]
    want = bert_forward(config, weights, ids, mask)
    np.testing.assert_allclose(got[mask > 0], want[mask > 0], atol=2e-5)
    assert got.shape == (2, 6, 32)


def test_projection_and_normalization_in_graph():
    config = tiny_config()
    weights = random_bert(config)
    p = projection()
    ids = np.array([[4, 50, 51, 5]], dtype=np.int64)
    mask = np.ones_like(ids)
    model = build_bert_onnx(config, {"bert." + k: v for k, v in weights.items()}, projection=p)
    got = ort.InferenceSession(model.SerializeToString()).run(
        None, {"input_ids": ids, "attention_mask": mask}
    )[0]
    want = bert_forward(config, weights, ids, mask) @ p.T.astype(np.float64)
    want /= np.linalg.norm(want, axis=-1, keepdims=True)
    np.testing.assert_allclose(got, want, atol=2e-5)


def test_plain_checkpoint_round_trip(tmp_path):
    src = write_hf(tmp_path / "hf", tiny_config(), random_bert(tiny_config()))
    assert detect(src) == "hf"
    dst = convert(src, tmp_path / "out")
    cfg = json.loads((dst / "onnx_config.json").read_text())
    assert cfg["do_query_expansion"] is False
    assert cfg["query_length"] == 64  # the position limit: plain queries are not cut at 32
    enc = colmax.Encoder(dst)
    assert enc.dim == 32 and enc.query_length == 64
    docs = enc.encode_documents(TEXTS)
    assert len(docs) == len(TEXTS) and docs.tokens.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(docs.tokens, axis=1), 1, atol=1e-5)
    # "?", ",", ":", "!" are dropped; [CLS] and [SEP] stay
    assert docs.lengths.tolist() == [8, 5, 4, 2]


def test_stanford_checkpoint(tmp_path):
    config = tiny_config()
    meta = {"query_maxlen": 12, "doc_maxlen": 20, "mask_punctuation": True, "attend_to_mask_tokens": False}
    src = write_stanford(tmp_path / "stanford", config, random_bert(config), projection(), meta)
    assert detect(src) == "stanford"
    enc = colmax.Encoder(convert(src, tmp_path / "out"))
    assert (enc.dim, enc.query_length, enc.document_length) == (16, 12, 20)
    assert enc.tokenizer.query_marker == VOCAB.index("[unused0]")
    assert enc.tokenizer.document_marker == VOCAB.index("[unused1]")
    q = enc.encode_queries(TEXTS)
    assert q.lengths.tolist() == [12] * len(TEXTS)  # [MASK] expansion, every position kept
    docs = enc.encode_documents(TEXTS)
    assert docs.lengths.tolist() == [9, 6, 5, 3]  # the marker adds one kept vector


def test_stanford_without_mask_punctuation_keeps_punctuation(tmp_path):
    config = tiny_config()
    meta = {"query_maxlen": 12, "doc_maxlen": 20, "mask_punctuation": False}
    src = write_stanford(tmp_path / "s", config, random_bert(config), projection(), meta)
    enc = colmax.Encoder(convert(src, tmp_path / "out"))
    assert enc.encode_documents(TEXTS).lengths.tolist() == [10, 9, 5, 3]


def test_pylate_checkpoint(tmp_path):
    config = tiny_config(vocab_size=len(VOCAB) + 2)  # PyLate grows the vocabulary by [Q] and [D]
    settings = {
        "query_prefix": "[Q] ",
        "document_prefix": "[D] ",
        "query_length": 10,
        "document_length": 24,
        "do_query_expansion": True,
        "attend_to_expansion_tokens": False,
        "skiplist_words": list("!,.:?"),
    }
    src = write_pylate(tmp_path / "pylate", config, random_bert(config), projection(), settings)
    assert detect(src) == "pylate"
    enc = colmax.Encoder(convert(src, tmp_path / "out"))
    assert enc.tokenizer.query_marker == len(VOCAB) and enc.tokenizer.document_marker == len(VOCAB) + 1
    assert enc.dim == 16 and enc.query_length == 10 and enc.document_length == 24
    assert enc.encode_queries(["paris"]).lengths.tolist() == [10]


def test_quantize_int8_is_preferred_and_close(tmp_path):
    src = write_hf(tmp_path / "hf", tiny_config(), random_bert(tiny_config()))
    dst = convert(src, tmp_path / "out", quantize="int8")
    assert (dst / "model_int8.onnx").exists()
    q8 = colmax.Encoder(dst)
    f32 = colmax.Encoder(dst, int8=False)
    assert q8.onnx_path.name == "model_int8.onnx" and f32.onnx_path.name == "model.onnx"
    a, b = q8.encode_documents(TEXTS), f32.encode_documents(TEXTS)
    assert a.lengths.tolist() == b.lengths.tolist()
    assert np.mean(np.sum(a.tokens * b.tokens, axis=1)) > 0.95


def test_cli_convert(tmp_path, capsys):
    src = write_hf(tmp_path / "hf", tiny_config(), random_bert(tiny_config()))
    assert cli_main(["convert", str(src), str(tmp_path / "out"), "--quantize", "int8"]) == 0
    assert "plain encoder" in capsys.readouterr().out
    # a non-empty destination is refused without --force
    assert cli_main(["convert", str(src), str(tmp_path / "out")]) == 2
    assert "not empty" in capsys.readouterr().err
    assert cli_main(["convert", str(src), str(tmp_path / "out"), "--force"]) == 0


def test_unsupported_architecture_names_what_is_supported(tmp_path):
    src = write_hf(tmp_path / "mb", tiny_config(model_type="modernbert"), random_bert(tiny_config()))
    with pytest.raises(UnsupportedModelError, match="BERT-family"):
        convert(src, tmp_path / "out")


def test_bad_checkpoints(tmp_path):
    with pytest.raises(FileNotFoundError):
        convert(tmp_path / "missing", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFormatError, match=r"config\.json"):
        convert(tmp_path / "empty", tmp_path / "out")
    src = write_hf(tmp_path / "hf", tiny_config(), random_bert(tiny_config()))
    (src / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"model\.safetensors"):
        convert(src, tmp_path / "out")


def test_safetensors_round_trip(tmp_path):
    tensors = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([1, 2], dtype=np.int64)}
    write_safetensors(tmp_path / "t.safetensors", tensors)
    back = read_safetensors(tmp_path / "t.safetensors")
    for k, v in tensors.items():
        np.testing.assert_array_equal(back[k], v)


def test_lighton_style_directory_with_sentence_transformers_config(tmp_path):
    # LightOn's exports carry PyLate's settings file; marker ids are looked up in the tokenizer
    config = tiny_config(vocab_size=len(VOCAB) + 2)
    settings = {"query_prefix": "[Q] ", "document_prefix": "[D] ", "query_length": 10, "document_length": 24}
    src = write_pylate(tmp_path / "pylate", config, random_bert(config), projection(), settings)
    dst = convert(src, tmp_path / "out")
    (dst / "onnx_config.json").unlink()
    (dst / "config_sentence_transformers.json").write_text(
        json.dumps({**settings, "do_query_expansion": False})  # what LightOn's exporter writes
    )
    enc = colmax.Encoder(dst)
    assert enc.tokenizer.query_marker == len(VOCAB) and enc.tokenizer.document_marker == len(VOCAB) + 1
    assert enc.encode_queries(["paris"]).lengths.tolist() == [4]  # [CLS] [Q] paris [SEP]
    assert colmax.Encoder(dst, do_query_expansion=True).encode_queries(["paris"]).lengths.tolist() == [10]
