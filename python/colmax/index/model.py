"""The index's model: what ``Index.create`` records about it, and binding an encoder on reopen.

The manifest records the model's name, directory (None for the packaged default) and a
fingerprint of its ONNX file, so that a rebuilt or replaced model never silently scores queries
against documents it did not encode.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..encoding.default_model import NAME as DEFAULT_NAME
from ..encoding.encoder import Encoder, load_encoder
from .files import file_sha256


def model_record(model, dim: int | None) -> tuple[object | None, dict, int]:
    """Resolve ``Index.create``'s model argument to (encoder or None, manifest record, dim)."""
    if model is None and dim is not None:
        return None, {"name": None, "path": None, "default": False}, dim
    encoder = load_encoder(model)
    if dim is not None and dim != encoder.dim:
        raise ValueError(
            f"dim={dim} but the model {encoder.name} produces {encoder.dim}-dim vectors: drop dim="
        )
    default = model is None or (encoder.name == DEFAULT_NAME and not isinstance(model, (str, os.PathLike)))
    onnx = getattr(encoder, "onnx_path", None)
    record = {
        "name": encoder.name,
        "path": None if default else str(Path(encoder.path).resolve()),
        "default": default,
        "onnx_sha256": file_sha256(Path(onnx)) if onnx else None,
        "query_length": encoder.query_length,
        "document_length": encoder.document_length,
    }
    return encoder, record, encoder.dim


def describe(record: dict) -> dict:
    """A model record as ``info()`` shows it: its name and where it is loaded from."""
    where = record.get("path") or ("packaged default" if record.get("default") else None)
    return {"model": record.get("name") or "(none: embeddings only)", "model_path": where}


def bind_encoder(record: dict, dim: int, override, threads: int | None = None) -> object:
    """The encoder for an index whose manifest holds model ``record`` and vectors of ``dim``:
    ``override`` (a model directory or an Encoder) when given, else the recorded model,
    checked against its fingerprint; its dim must match. A model loaded here runs on
    ``threads`` (None: every CPU the process may use)."""
    if override is not None:
        encoder = load_encoder(override, threads=threads)
    elif record.get("default"):
        encoder = Encoder(threads=threads)
    elif record.get("path"):
        if not Path(record["path"]).is_dir():
            raise FileNotFoundError(
                f"the index's model directory {record['path']} does not exist: open the index with "
                "Index.open(path, model=MODEL_DIR) (on the command line: --model MODEL_DIR)"
            )
        encoder = Encoder(record["path"], threads=threads)
    else:
        raise ValueError(
            "this index has no model (created with dim=): pass token matrices, or open it with "
            "Index.open(path, model=MODEL_DIR) (on the command line: --model MODEL_DIR) to use text"
        )
    expected = record.get("onnx_sha256")
    onnx = getattr(encoder, "onnx_path", None)
    if override is None and expected and onnx and file_sha256(Path(onnx)) != expected:
        raise ValueError(
            f"the model {record.get('name')} found now ({onnx}) differs from the one that built "
            "this index (its ONNX file changed): rebuild the index, or pass "
            "Index.open(path, model=...) (on the command line: --model) to search with this model anyway"
        )
    if encoder.dim != dim:
        raise ValueError(f"the model produces {encoder.dim}-dim vectors but the index holds {dim}-dim ones")
    return encoder


def passage_settings(encoder, length=None, stride=None, titles: bool = True) -> dict | None:
    """How ``encoder`` cuts long documents into passages for an index: ``{"length", "stride",
    "titles"}``, in tokens (None each: the defaults) checked against the model, and whether
    continued passages carry their document's title (indexes made before titles were carried
    record no "titles" and keep cutting without them, so that their passages stay alike); None
    for an encoder that cannot cut passages (one passed in without ``encode_passages``, which
    encodes each document whole, as it does)."""
    if not hasattr(encoder, "encode_passages"):
        if length is not None or stride is not None:
            raise ValueError("passage_length and passage_stride need a colmax Encoder, which cuts passages")
        return None
    length, stride = encoder.tokenizer.passage_settings(length, stride)
    return {"length": length, "stride": stride, "titles": titles}
