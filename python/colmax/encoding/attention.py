"""Fusing a BERT graph's attention into onnxruntime's MultiHeadAttention when a session loads it.

The graphs ``onnx_builder`` writes spell attention out in standard ops: per layer four Reshapes,
four Transposes, two MatMuls, the mask Add and a Softmax. onnxruntime's own optimizer does not
fuse that pattern once the projections are int8, and for a short query the dozens of small ops
cost more than their arithmetic. One ``com.microsoft.MultiHeadAttention`` per layer computes the
same products and softmax; on the default model it gave bit-identical vectors and 3-5% less
encoding time per SciFact query (tests/encoding/test_attention.py, README "Throughput").

The rewrite happens in memory, so a model file, and the fingerprint an index records of it,
never change. Any block that differs from the expected pattern in any way (an extra consumer, a
scale, another mask) is left as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

_MS_DOMAIN = "com.microsoft"
_KEY_MASK = "colmax_key_padding_mask"


def fused_model(onnx_path: Path) -> bytes | str:
    """What ``onnxruntime.InferenceSession`` should load for ``onnx_path``: the serialized model
    with its attention fused, or the path itself when nothing was fused (or the file cannot be
    read here, which the session then reports)."""
    import onnx

    try:
        model = onnx.load(str(onnx_path), load_external_data=False)
    except Exception:  # onnx raises protobuf's own errors for unreadable files
        return str(onnx_path)
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        return str(onnx_path)  # its weights live beside it: the session must load it from there
    return model.SerializeToString() if fuse_attention(model) else str(onnx_path)


def fuse_attention(model) -> int:
    """Replace, in place, every attention block of ``model`` (an ``onnx.ModelProto``) written as
    ``onnx_builder`` writes it by one MultiHeadAttention node; return how many were replaced."""
    from onnx import TensorProto, helper

    graph = _Graph(model.graph)
    replaced: dict[int, object] = {}  # id of a block's last node -> its fused node
    dropped: set[int] = set()
    for softmax in graph.nodes:
        block = graph.attention(softmax) if softmax.op_type == "Softmax" else None
        if block is None or any(id(n) in dropped for n in block.nodes):
            continue
        dropped.update(id(n) for n in block.nodes)
        replaced[id(block.nodes[-1])] = helper.make_node(
            "MultiHeadAttention",
            [*block.qkv, "", _KEY_MASK],
            [block.nodes[-1].output[0]],
            domain=_MS_DOMAIN,
            num_heads=block.heads,
            scale=1.0,  # the pattern scales nothing: the builder folds 1/sqrt(d) into the query
            mask_filter_value=block.mask_value,
        )
    if not replaced:
        return 0
    kept = [helper.make_node("Cast", ["attention_mask"], [_KEY_MASK], to=TensorProto.INT32)]
    for n in graph.nodes:
        if id(n) in replaced:
            kept.append(replaced[id(n)])
        elif id(n) not in dropped:
            kept.append(n)
    del model.graph.node[:]
    model.graph.node.extend(_live(kept, graph.outputs))
    if not any(o.domain == _MS_DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(_MS_DOMAIN, 1))
    return len(replaced)


@dataclass
class _Block:
    nodes: list  # every node of the block, the final Reshape last
    qkv: list[str]  # the projections, (batch, seq, hidden) each
    heads: int
    mask_value: float  # what a masked key adds to its scores


class _Graph:
    """Who produces and who reads each tensor of a graph, and its constants."""

    def __init__(self, graph) -> None:
        self.nodes = list(graph.node)
        self.producer = {out: n for n in self.nodes for out in n.output}
        self.consumers: dict[str, list] = {}
        for n in self.nodes:
            for name in n.input:
                self.consumers.setdefault(name, []).append(n)
        self.outputs = {o.name for o in graph.output}
        self.constants = {t.name: t for t in graph.initializer}

    def constant(self, name: str) -> np.ndarray | None:
        from onnx import numpy_helper

        return numpy_helper.to_array(self.constants[name]) if name in self.constants else None

    def made_by(self, name: str, op_type: str):
        node = self.producer.get(name)
        return node if node is not None and node.op_type == op_type else None

    def only_use(self, name: str, op_type: str):
        """The single node reading ``name``, when it is an ``op_type`` and ``name`` is no graph
        output (an intermediate nothing else sees), else None."""
        users = self.consumers.get(name, [])
        if len(users) != 1 or name in self.outputs or users[0].op_type != op_type:
            return None
        return users[0]

    def attention(self, softmax) -> _Block | None:
        """The block around ``softmax`` when it is Reshape(Transpose(Softmax(Q K^T + mask) V))
        over Q, K, V split into heads, and nothing outside reads its intermediates."""
        axis = next((a.i for a in softmax.attribute if a.name == "axis"), -1)
        add = self.made_by(softmax.input[0], "Add")
        if axis not in (-1, 3) or add is None or self.only_use(add.output[0], "Softmax") is not softmax:
            return None
        scores, mask_value = self.made_by(add.input[0], "MatMul"), self.mask_value(add.input[1])
        if scores is None or mask_value is None or self.only_use(scores.output[0], "Add") is not add:
            return None
        mixed = self.only_use(softmax.output[0], "MatMul")
        if mixed is None or mixed.input[0] != softmax.output[0]:
            return None
        back = self.only_use(mixed.output[0], "Transpose")
        merge = None if back is None else self.only_use(back.output[0], "Reshape")
        merged = None if merge is None else self.constant(merge.input[1])
        if merged is None or _perm(back) != [0, 2, 1, 3] or merged.tolist()[:2] != [0, 0] or merged.size != 3:
            return None
        sides = [
            self.split_heads(scores.input[0], [0, 2, 1, 3]),
            self.split_heads(scores.input[1], [0, 2, 3, 1]),
            self.split_heads(mixed.input[1], [0, 2, 1, 3]),
        ]
        if any(side is None for side in sides) or len({heads for *_, heads in sides}) != 1:
            return None
        split = [n for reshape, transpose, _ in sides for n in (reshape, transpose)]
        return _Block(
            [add, scores, softmax, mixed, back, *split, merge],
            [reshape.input[0] for reshape, _, _ in sides],
            sides[0][2],
            mask_value,
        )

    def split_heads(self, name: str, perm: list[int]):
        """``(reshape, transpose, heads)`` when ``name`` is Transpose(Reshape(x, [0, 0, heads,
        head_dim]), perm) and each is read by the next alone."""
        transpose = self.made_by(name, "Transpose")
        reshape = None if transpose is None else self.made_by(transpose.input[0], "Reshape")
        shape = None if reshape is None else self.constant(reshape.input[1])
        if shape is None or _perm(transpose) != perm or shape.size != 4 or shape.tolist()[:2] != [0, 0]:
            return None
        if self.only_use(reshape.output[0], "Transpose") is not transpose or len(self.consumers[name]) != 1:
            return None
        return reshape, transpose, int(shape[2])

    def mask_value(self, name: str) -> float | None:
        """The float ``m`` when ``name`` is ``Unsqueeze((1 - Cast(attention_mask)) * m, [1, 2])``:
        the additive mask MultiHeadAttention builds from a key padding mask and ``m``."""
        unsqueeze = self.made_by(name, "Unsqueeze")
        if unsqueeze is None or len(unsqueeze.input) < 2:
            return None
        axes, mul = self.constant(unsqueeze.input[1]), self.made_by(unsqueeze.input[0], "Mul")
        if axes is None or axes.tolist() != [1, 2] or mul is None:
            return None
        sub, value = self.made_by(mul.input[0], "Sub"), self.constant(mul.input[1])
        if sub is None or value is None or value.size != 1:
            return None
        one, cast = self.constant(sub.input[0]), self.made_by(sub.input[1], "Cast")
        if one is None or one.size != 1 or float(one.reshape(())) != 1.0 or cast is None:
            return None
        return float(value.reshape(())) if cast.input[0] == "attention_mask" else None


def _perm(node) -> list[int] | None:
    return next((list(a.ints) for a in node.attribute if a.name == "perm"), None)


def _live(nodes: list, outputs: set[str]) -> list:
    """``nodes`` without those whose results nothing reads any more (the unfused mask's)."""
    while True:
        read = {name for n in nodes for name in n.input} | outputs
        alive = [n for n in nodes if any(o in read for o in n.output)]
        if len(alive) == len(nodes):
            return nodes
        nodes = alive
