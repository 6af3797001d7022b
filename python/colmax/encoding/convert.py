"""Checkpoint -> colmax model directory, without torch.

Reads a Hugging Face BERT checkpoint, a Stanford ColBERT checkpoint (``HF_ColBERT``:
``linear.weight`` beside the BERT weights, ``artifact.metadata``) or a PyLate model (``1_Dense/``,
``config_sentence_transformers.json``); builds the ONNX graph from the weights
(:mod:`colmax.onnx_builder`) and writes ``model.onnx``, ``tokenizer.json``, ``onnx_config.json``
and, with ``quantize="int8"``, ``model_int8.onnx``.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .models import (
    CONFIG_FILES,
    DEFAULT_DOCUMENT_LENGTH,
    ModelConfig,
    ModelFormatError,
    read_json_object,
    write_config,
)
from .onnx_builder import SUPPORTED, UnsupportedModelError, bert_prefix, build_bert_onnx, check_supported
from .quantize import quantize_int8
from .tokenizer import ColbertTokenizer
from .weights import read_safetensors, read_torch_bin, read_weights

CHECKPOINT_KINDS = ("stanford", "pylate", "hf")
# What a conversion writes into its destination (and removes there first when overwriting).
OUTPUT_FILES = ("tokenizer.json", "model.onnx", "model_int8.onnx", *CONFIG_FILES)


def _dense_dirs(src: Path) -> list[Path]:
    dirs = [p for p in src.iterdir() if p.is_dir() and re.fullmatch(r"\d+_Dense", p.name)]
    return sorted(dirs, key=lambda p: int(p.name.split("_")[0]))


def detect(src: str | Path) -> str:
    """'stanford', 'pylate' or 'hf' (a plain encoder) for a checkpoint directory."""
    src = Path(src)
    if not src.is_dir():
        raise FileNotFoundError(f"checkpoint directory {src} does not exist")
    st_model = (src / "config_sentence_transformers.json").exists() and (src / "modules.json").exists()
    if _dense_dirs(src) or st_model:
        return "pylate"
    if (src / "artifact.metadata").exists():
        return "stanford"
    if not (src / "config.json").exists():
        raise ModelFormatError(
            f"{src} has no config.json: expected a Hugging Face checkpoint directory "
            "(config.json + model.safetensors or pytorch_model.bin)"
        )
    arch = read_json_object(src / "config.json").get("architectures") or []
    return "stanford" if "HF_ColBERT" in arch else "hf"


def _write_tokenizer(src: Path, dst: Path) -> None:
    if (src / "tokenizer.json").exists():
        shutil.copy(src / "tokenizer.json", dst / "tokenizer.json")
        return
    if (src / "vocab.txt").exists():  # a WordPiece checkpoint without the fast tokenizer file
        from tokenizers.implementations import BertWordPieceTokenizer

        lower = True
        if (src / "tokenizer_config.json").exists():
            lower = read_json_object(src / "tokenizer_config.json").get("do_lower_case", True)
        BertWordPieceTokenizer(str(src / "vocab.txt"), lowercase=lower).save(str(dst / "tokenizer.json"))
        return
    raise ModelFormatError(f"{src} has no tokenizer.json or vocab.txt")


def _projection(kind: str, src: Path, weights: dict[str, np.ndarray]) -> np.ndarray | None:
    if kind == "stanford":
        if "linear.weight" not in weights:
            raise ModelFormatError(f"{src} is a Stanford ColBERT checkpoint without linear.weight")
        return weights["linear.weight"]
    if kind != "pylate":
        return None
    projection = None
    for dense in _dense_dirs(src):
        cfg = read_json_object(dense / "config.json") if (dense / "config.json").exists() else {}
        activation = cfg.get("activation_function", "torch.nn.modules.linear.Identity")
        if not activation.endswith("Identity"):
            raise UnsupportedModelError(
                f"{dense.name}: activation {activation} is not supported (Identity only)"
            )
        if (dense / "model.safetensors").exists():
            tensors = read_safetensors(dense / "model.safetensors")
        elif (dense / "pytorch_model.bin").exists():
            tensors = read_torch_bin(dense / "pytorch_model.bin")
        else:
            raise ModelFormatError(f"{dense} has no model.safetensors or pytorch_model.bin")
        w = tensors.get("linear.weight")
        if w is None or w.ndim != 2 or w.dtype.kind != "f":
            raise ModelFormatError(f"{dense} holds no 2-D float tensor linear.weight")
        w = w.astype(np.float32)
        if projection is not None and w.shape[1] != projection.shape[0]:
            raise ModelFormatError(
                f"{dense.name} maps {w.shape[1]} dimensions but the layer before it outputs "
                f"{projection.shape[0]}"
            )
        bias = tensors.get("linear.bias")
        if bias is not None and np.any(bias != 0):
            raise UnsupportedModelError(
                f"{dense.name} has a bias: colmax supports bias-free projections only"
            )
        projection = w if projection is None else w @ projection  # consecutive linear maps compose
    return projection


def _settings(kind: str, src: Path, bert_config: dict, dim: int) -> ModelConfig:
    if kind == "stanford":
        meta = read_json_object(src / "artifact.metadata") if (src / "artifact.metadata").exists() else {}
        settings = {
            "query_prefix": meta.get("query_token_id", "[unused0]"),
            "document_prefix": meta.get("doc_token_id", "[unused1]"),
            "query_length": meta.get("query_maxlen", 32),
            "document_length": meta.get("doc_maxlen", 180),
            "do_query_expansion": True,
            "attend_to_expansion_tokens": meta.get("attend_to_mask_tokens", False),
            # colbert-ai drops punctuation only when mask_punctuation is set
            "skiplist_words": None if meta.get("mask_punctuation", True) else [],
        }
    elif kind == "pylate":
        st = read_json_object(src / "config_sentence_transformers.json")
        settings = {
            key: st[key]
            for key in (
                "query_prefix",
                "document_prefix",
                "query_length",
                "document_length",
                "do_query_expansion",
                "attend_to_expansion_tokens",
                "skiplist_words",
            )
            if key in st
        }
        settings.setdefault("query_prefix", "[Q] ")
        settings.setdefault("document_prefix", "[D] ")
    else:  # a plain encoder: no markers or expansion, queries up to the position limit
        limit = int(bert_config.get("max_position_embeddings", 512))
        settings = {
            "query_length": limit,
            "document_length": min(DEFAULT_DOCUMENT_LENGTH, limit),
            "do_query_expansion": False,
        }
    config = ModelConfig.from_dict(
        {
            "model_name": src.resolve().name,
            "embedding_dim": dim,
            "pad_token_id": bert_config.get("pad_token_id", 0),
            **settings,
        }
    )
    return config


def _resolve_ids(config: ModelConfig, tokenizer_path: Path) -> ModelConfig:
    tok = ColbertTokenizer(tokenizer_path, config)
    return config.replace(
        query_prefix_id=tok.query_marker, document_prefix_id=tok.document_marker, mask_token_id=tok.mask_id
    )


def _check_vocabulary(tokenizer_path: Path, weights: dict[str, np.ndarray]) -> None:
    """Every token id must have a row in the embedding table (onnxruntime refuses ids past it)."""
    from tokenizers import Tokenizer

    tokens = Tokenizer.from_file(str(tokenizer_path)).get_vocab_size(with_added_tokens=True)
    rows = weights[bert_prefix(weights) + "embeddings.word_embeddings.weight"].shape[0]
    if tokens > rows:
        raise ModelFormatError(
            f"the tokenizer has {tokens} tokens but the embedding table only {rows} rows: "
            "the checkpoint's tokenizer and weights do not belong together"
        )


def convert(
    src: str | Path,
    dst: str | Path,
    *,
    quantize: str | None = None,
    overwrite: bool = False,
    query_length: int | None = None,
    document_length: int | None = None,
) -> Path:
    """Convert checkpoint ``src`` into the colmax model directory ``dst``; returns ``dst``."""
    import onnx

    if quantize not in (None, "int8"):
        raise ValueError(f"quantize must be None or 'int8', got {quantize!r}")
    src, dst = Path(src), Path(dst)
    kind = detect(src)
    model_dir = src
    if kind == "pylate" and not (src / "config.json").exists() and (src / "0_Transformer").is_dir():
        model_dir = src / "0_Transformer"  # older sentence-transformers layout
    if not (model_dir / "config.json").exists():
        raise ModelFormatError(f"{model_dir} has no config.json")
    bert_config = read_json_object(model_dir / "config.json")
    check_supported(bert_config)
    if dst.resolve() == src.resolve() or dst.resolve() == model_dir.resolve():
        raise ValueError(f"{dst} is the checkpoint itself: write the model directory elsewhere")
    if dst.exists() and any(dst.iterdir()) and not overwrite:
        raise FileExistsError(
            f"{dst} is not empty: choose another directory or pass overwrite=True (--force)"
        )
    weights = read_weights(model_dir)
    projection = _projection(kind, src, weights)
    dim = int(projection.shape[0]) if projection is not None else int(bert_config["hidden_size"])
    model = build_bert_onnx(bert_config, weights, projection=projection, normalize=True)
    config = _settings(kind, src, bert_config, dim).replace(
        query_length=query_length, document_length=document_length
    )
    limit = int(bert_config.get("max_position_embeddings", 512))
    for name in ("query_length", "document_length"):
        if getattr(config, name) > limit:
            raise ModelFormatError(f"{name} {getattr(config, name)} exceeds the model's {limit} positions")
    # Built beside dst and moved in at the end: a failure leaves dst as it was, and files of an
    # earlier conversion (a model_int8.onnx the Encoder would prefer) never outlive it.
    dst.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", dir=dst.parent))
    try:
        _write_tokenizer(model_dir if (model_dir / "tokenizer.json").exists() else src, staging)
        config = _resolve_ids(config, staging / "tokenizer.json")
        _check_vocabulary(staging / "tokenizer.json", weights)
        onnx.save(model, str(staging / "model.onnx"))
        if quantize == "int8":
            quantize_int8(staging / "model.onnx", staging / "model_int8.onnx")
        write_config(staging, config.to_dict())
        dst.mkdir(exist_ok=True)
        for name in OUTPUT_FILES:
            (dst / name).unlink(missing_ok=True)
        for name in sorted(OUTPUT_FILES, key=lambda n: n == CONFIG_FILES[0]):  # the config last
            if (staging / name).exists():
                os.replace(staging / name, dst / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dst


__all__ = ["CHECKPOINT_KINDS", "SUPPORTED", "convert", "detect"]
