"""Model directories colmax reads: its own layout and LightOn's ONNX exports.

A model directory holds ``model.onnx`` (optional ``model_int8.onnx``), ``tokenizer.json`` and a
settings file: ``onnx_config.json`` (colmax's own and LightOn's ``colbert-export`` layout) or
``config_sentence_transformers.json`` (PyLate). docs/models.md describes the format.
"""

from __future__ import annotations

import dataclasses
import json
import re
import string
from dataclasses import dataclass
from pathlib import Path

CONFIG_FILES = ("onnx_config.json", "config_sentence_transformers.json")
# what a model name on the Hugging Face Hub looks like: "org/name", no path of this machine
_HUB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
DEFAULT_QUERY_LENGTH = 32  # ColBERT's defaults, used when a config does not say
DEFAULT_DOCUMENT_LENGTH = 180


class ModelFormatError(ValueError):
    """A model directory is missing files or holds something colmax cannot read."""


@dataclass(frozen=True)
class ModelConfig:
    """ColBERT encoding settings of one model (the fields of ``onnx_config.json``).

    Markers (``*_prefix``) are inserted as one token id at position 1; an empty prefix means
    no marker. ``skiplist_words`` are dropped from documents (None: ``string.punctuation``).
    """

    model_name: str = "model"
    embedding_dim: int | None = None
    query_prefix: str = ""
    document_prefix: str = ""
    query_prefix_id: int | None = None
    document_prefix_id: int | None = None
    query_length: int = DEFAULT_QUERY_LENGTH
    document_length: int = DEFAULT_DOCUMENT_LENGTH
    do_query_expansion: bool = True
    attend_to_expansion_tokens: bool = False
    skiplist_words: tuple[str, ...] | None = None
    mask_token_id: int | None = None
    pad_token_id: int = 0
    uses_token_type_ids: bool = False
    normalized: bool = True

    @property
    def skiplist(self) -> tuple[str, ...]:
        return tuple(string.punctuation) if self.skiplist_words is None else self.skiplist_words

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields and v is not None}
        if "skiplist_words" in values:
            values["skiplist_words"] = tuple(values["skiplist_words"])
        for key in ("query_prefix", "document_prefix"):
            values[key] = values.get(key) or ""
        return cls(**values)

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        if self.skiplist_words is not None:
            data["skiplist_words"] = list(self.skiplist_words)
        return data

    def replace(self, **changes) -> ModelConfig:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


@dataclass(frozen=True)
class ModelFiles:
    """The resolved files of a model directory."""

    directory: Path
    onnx_path: Path
    tokenizer_path: Path
    config: ModelConfig


def read_json_object(path: Path) -> dict:
    """A JSON file holding an object (ModelFormatError naming the file otherwise)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ModelFormatError(f"cannot read {path}: {e}") from None
    if not isinstance(data, dict):
        raise ModelFormatError(f"{path} must hold a JSON object")
    return data


def write_config(directory: Path, config: dict) -> None:
    """Write a model directory's ``onnx_config.json``; callers write it last, since its presence
    marks a complete directory."""
    (directory / CONFIG_FILES[0]).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def read_config(directory: Path) -> ModelConfig:
    for name in CONFIG_FILES:
        path = directory / name
        if path.exists():
            data = read_json_object(path)
            data.setdefault("model_name", directory.name)
            return ModelConfig.from_dict(data)
    raise ModelFormatError(
        f"{directory} has no {' or '.join(CONFIG_FILES)}: not a colmax/ONNX model directory. "
        "Convert a Hugging Face, Stanford ColBERT or PyLate checkpoint with `colmax convert SRC DST`"
    )


def resolve_model(path: str | Path, *, int8: bool | None = None) -> ModelFiles:
    """Find the files of the model directory ``path``.

    ``int8`` None takes ``model_int8.onnx`` when present; True requires it; False takes the
    float32 ``model.onnx``.
    """
    directory = Path(path).expanduser()
    if not directory.exists():
        if _HUB_NAME.match(str(path)):
            local = str(path).split("/")[1]
            raise FileNotFoundError(
                f"model directory {path} does not exist, and colmax does not download models: {path!r} "
                "looks like a Hugging Face Hub name. Download the checkpoint (e.g. `huggingface-cli "
                f"download {path} --local-dir {local}`), convert it once with `colmax convert {local} "
                f"{local}-colmax --quantize int8`, and pass {local}-colmax as the model"
            )
        raise FileNotFoundError(f"model directory {directory} does not exist")
    if not directory.is_dir():
        raise ModelFormatError(f"{directory} is a file: pass the model's directory")
    onnx_int8 = directory / "model_int8.onnx"
    onnx_fp32 = directory / "model.onnx"
    if int8 is True or (int8 is None and onnx_int8.exists()):
        onnx_path = onnx_int8
    else:
        onnx_path = onnx_fp32
    if not onnx_path.exists():
        if any((directory / f).exists() for f in ("model.safetensors", "pytorch_model.bin")):
            hint = f"it looks like a checkpoint: run `colmax convert {directory} OUT_DIR` first"
        elif int8:
            hint = f"quantize it with `colmax convert {directory} OUT_DIR --quantize int8`"
        else:
            hint = "expected an export of `colmax convert` or LightOn's colbert-export"
        raise ModelFormatError(f"{directory} has no {onnx_path.name}: {hint}")
    tokenizer_path = directory / "tokenizer.json"
    if not tokenizer_path.exists():
        raise ModelFormatError(f"{directory} has no tokenizer.json (the Hugging Face tokenizers file)")
    return ModelFiles(directory, onnx_path, tokenizer_path, read_config(directory))
