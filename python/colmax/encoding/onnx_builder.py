"""Build a BERT encoder ONNX graph straight from NumPy weights with the ``onnx`` helper API.

The graph: ``input_ids``, ``attention_mask`` (int64, [batch, seq]) -> ``output``
(float32, [batch, seq, dim]): BERT's last hidden state, then the optional ColBERT projection
(``x @ W.T``, no bias) and per-token L2 normalization. Standard opset-17 ops only; onnxruntime's
optimizer fuses GELU, LayerNorm and MatMul+Add itself.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from .models import ModelFormatError

SUPPORTED = (
    "BERT-family encoders with absolute positions (config model_type 'bert': BERT, MiniLM, "
    "colbertv2.0, answerai-colbert-small, ...)"
)
_ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu")
OPSET = 17


class UnsupportedModelError(ValueError):
    """The checkpoint's architecture cannot be built by colmax."""


def check_supported(config: Mapping) -> None:
    model_type = config.get("model_type")
    if model_type != "bert":
        raise UnsupportedModelError(
            f"model_type {model_type!r} is not supported: colmax convert handles {SUPPORTED}. "
            "ModernBERT, RoBERTa/XLM-R, DeBERTa, DistilBERT and others are not supported yet"
        )
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise UnsupportedModelError(
            f"position_embedding_type {config['position_embedding_type']!r} is not supported: "
            f"colmax convert handles {SUPPORTED}"
        )
    if config.get("hidden_act", "gelu") not in _ACTIVATIONS:
        raise UnsupportedModelError(
            f"hidden_act {config['hidden_act']!r} is not supported (supported: {', '.join(_ACTIVATIONS)})"
        )


def bert_prefix(weights: Mapping[str, np.ndarray]) -> str:
    """The key prefix before ``embeddings.word_embeddings.weight`` ('', 'bert.', ...)."""
    suffix = "embeddings.word_embeddings.weight"
    hits = [k[: -len(suffix)] for k in weights if k.endswith(suffix)]
    if len(hits) != 1:
        raise UnsupportedModelError(
            f"expected one '{suffix}' tensor in the checkpoint, found {len(hits)}: "
            f"colmax convert handles {SUPPORTED}"
        )
    return hits[0]


def build_bert_onnx(
    config: Mapping,
    weights: Mapping[str, np.ndarray],
    *,
    projection: np.ndarray | None = None,
    normalize: bool = True,
    graph_name: str = "colmax_bert",
):
    """Return an ``onnx.ModelProto`` computing BERT (+ projection, + L2 norm) from ``weights``.

    ``weights`` uses Hugging Face ``BertModel`` names, with any common prefix (``bert.``).
    ``projection`` is ColBERT's ``linear.weight`` of shape (dim, hidden).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    check_supported(config)
    prefix = bert_prefix(weights)

    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    if heads <= 0 or hidden % heads:
        raise ModelFormatError(f"hidden_size {hidden} is not a multiple of num_attention_heads {heads}")
    head_dim = hidden // heads
    layers = int(config["num_hidden_layers"])
    inner = int(config.get("intermediate_size", 4 * hidden))
    max_positions = int(config.get("max_position_embeddings", 512))

    def w(name: str, shape: tuple) -> np.ndarray:
        """A float tensor of the shape config.json implies (None: any size); the error names both."""
        key = prefix + name
        if key not in weights:
            raise UnsupportedModelError(f"checkpoint lacks tensor {key!r}: is it a BERT encoder?")
        value = np.asarray(weights[key])
        fits = value.ndim == len(shape) and all(n is None or n == m for n, m in zip(shape, value.shape))
        if value.dtype.kind != "f" or not fits:
            implied = tuple("any" if n is None else n for n in shape)
            raise ModelFormatError(
                f"checkpoint tensor {key!r} is {value.dtype} {value.shape} but config.json implies "
                f"floats of shape {implied}: the weights do not match the config"
            )
        return value.astype(np.float32)

    eps = float(config.get("layer_norm_eps", 1e-12))
    act = config.get("hidden_act", "gelu")

    initializers: list = []
    nodes: list = []
    names: set[str] = set()

    def const(name: str, value) -> str:
        if name not in names:  # shared scalars are stored once
            names.add(name)
            initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(op_type: str, inputs: list[str], **attrs) -> str:
        out = f"{op_type.lower()}_{len(nodes)}"
        nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def f32(value) -> np.ndarray:
        return np.asarray(value, dtype=np.float32)

    def layer_norm(x: str, name: str) -> str:
        return op(
            "LayerNormalization",
            [
                x,
                const(name + ".weight", w(name + ".weight", (hidden,))),
                const(name + ".bias", w(name + ".bias", (hidden,))),
            ],
            axis=-1,
            epsilon=eps,
        )

    def linear(x: str, name: str, out: int, inp: int, scale: float = 1.0) -> str:
        # HF stores (out, in); ONNX MatMul wants (in, out)
        wt = const(name + ".weight.T", (w(name + ".weight", (out, inp)) * scale).T)
        return op("Add", [op("MatMul", [x, wt]), const(name + ".bias", w(name + ".bias", (out,)) * scale)])

    def activation(x: str) -> str:
        if act == "relu":
            return op("Relu", [x])
        if act == "gelu":  # exact: 0.5 x (1 + erf(x / sqrt 2))
            t = op("Erf", [op("Div", [x, const("sqrt2", f32(math.sqrt(2.0)))])])
            t = op("Mul", [x, op("Add", [t, const("one", f32(1.0))])])
            return op("Mul", [t, const("half", f32(0.5))])
        # tanh approximation (gelu_new, gelu_pytorch_tanh)
        cube = op("Mul", [op("Mul", [x, x]), x])
        inner = op("Add", [x, op("Mul", [cube, const("c0.044715", f32(0.044715))])])
        inner = op("Mul", [inner, const("sqrt2/pi", f32(math.sqrt(2.0 / math.pi)))])
        t = op("Add", [op("Tanh", [inner]), const("one", f32(1.0))])
        return op("Mul", [op("Mul", [x, t]), const("half", f32(0.5))])

    # Embeddings. Positions 0..S-1 are the first S rows of the table, taken with a Slice whose
    # end is the 1-D Shape(input_ids)[1:2]: a Range+Gather form is rewritten by onnxruntime's
    # optimizer into a Slice with scalar bounds that fails at run time.
    word = op(
        "Gather",
        [
            const(
                "word_embeddings", w("embeddings.word_embeddings.weight", (config.get("vocab_size"), hidden))
            ),
            "input_ids",
        ],
        axis=0,
    )
    seq_len = op("Shape", ["input_ids"], start=1, end=2)
    zero = const("zero_1d", np.array([0], dtype=np.int64))
    positions = op(
        "Slice",
        [
            const("position_embeddings", w("embeddings.position_embeddings.weight", (max_positions, hidden))),
            zero,
            seq_len,
            zero,
        ],
    )
    x = op("Add", [word, positions])
    # a single segment: every token has token type 0
    x = op("Add", [x, const("token_type_0", w("embeddings.token_type_embeddings.weight", (None, hidden))[0])])
    x = layer_norm(x, "embeddings.LayerNorm")

    # additive attention mask (batch, 1, 1, seq): 0 where attended, float32 min elsewhere
    mask = op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    mask = op("Sub", [const("one", f32(1.0)), mask])
    mask = op("Mul", [mask, const("mask_min", f32(np.finfo(np.float32).min))])
    mask = op("Unsqueeze", [mask, const("axes_1_2", np.array([1, 2], dtype=np.int64))])

    split_heads = const("shape_b_s_h_d", np.array([0, 0, heads, head_dim], dtype=np.int64))
    merge_heads = const("shape_b_s_hidden", np.array([0, 0, hidden], dtype=np.int64))
    scale = 1.0 / math.sqrt(head_dim)  # folded into the query projection
    for i in range(layers):
        p = f"encoder.layer.{i}."
        q = linear(x, p + "attention.self.query", hidden, hidden, scale)
        k = linear(x, p + "attention.self.key", hidden, hidden)
        v = linear(x, p + "attention.self.value", hidden, hidden)
        q = op("Transpose", [op("Reshape", [q, split_heads])], perm=[0, 2, 1, 3])  # b, h, s, d
        k = op("Transpose", [op("Reshape", [k, split_heads])], perm=[0, 2, 3, 1])  # b, h, d, s
        v = op("Transpose", [op("Reshape", [v, split_heads])], perm=[0, 2, 1, 3])  # b, h, s, d
        probs = op("Softmax", [op("Add", [op("MatMul", [q, k]), mask])], axis=-1)
        ctx = op("Transpose", [op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
        ctx = op("Reshape", [ctx, merge_heads])
        x = layer_norm(
            op("Add", [linear(ctx, p + "attention.output.dense", hidden, hidden), x]),
            p + "attention.output.LayerNorm",
        )
        h = activation(linear(x, p + "intermediate.dense", inner, hidden))
        x = layer_norm(op("Add", [linear(h, p + "output.dense", hidden, inner), x]), p + "output.LayerNorm")

    dim = hidden
    if projection is not None:
        projection = np.asarray(projection, dtype=np.float32)
        if projection.ndim != 2 or projection.shape[1] != hidden:
            raise ValueError(f"projection must be (dim, {hidden}), got {projection.shape}")
        dim = projection.shape[0]
        x = op("MatMul", [x, const("projection.T", projection.T)])
    if normalize:
        norm = op("ReduceL2", [x], axes=[-1], keepdims=1)  # axes is an attribute up to opset 17
        x = op("Div", [x, op("Max", [norm, const("tiny", f32(1e-12))])])
    nodes[-1].output[0] = "output"

    graph = helper.make_graph(
        nodes,
        graph_name,
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
        ],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", "seq", dim])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="colmax")
    model.ir_version = 8  # readable by onnxruntime >= 1.10
    onnx.checker.check_model(model)
    return model
