"""Read checkpoint tensors into NumPy without torch: safetensors and pytorch_model.bin."""

from __future__ import annotations

import json
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np

_SAFETENSORS_DTYPES = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U8": np.uint8,
    "BOOL": np.bool_,
}


def read_safetensors(path: str | Path) -> dict[str, np.ndarray]:
    """All tensors of a ``.safetensors`` file (format: u64 header size, JSON header, raw bytes).

    bfloat16 tensors are widened to float32 (NumPy has no bfloat16).
    """
    path = Path(path)
    data = path.read_bytes()
    if len(data) < 8:
        raise ValueError(f"{path} is not a safetensors file (too short)")
    (header_len,) = struct.unpack("<Q", data[:8])
    try:
        header = json.loads(data[8 : 8 + header_len])
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not a safetensors file: {e}") from None
    base = 8 + header_len
    out: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        raw = data[base + start : base + end]
        dtype = info["dtype"]
        if dtype == "BF16":
            bits = np.frombuffer(raw, np.uint16).astype(np.uint32) << 16
            arr = bits.view(np.float32)
        elif dtype in _SAFETENSORS_DTYPES:
            arr = np.frombuffer(raw, _SAFETENSORS_DTYPES[dtype])
        else:
            raise ValueError(f"{path}: tensor {name!r} has unsupported dtype {dtype}")
        out[name] = arr.reshape(info["shape"])
    return out


def write_safetensors(path: str | Path, tensors: dict[str, np.ndarray]) -> None:
    """Write float32/int tensors as a ``.safetensors`` file (used by tests and fixtures)."""
    names = {np.dtype(v): k for k, v in _SAFETENSORS_DTYPES.items()}
    header: dict[str, dict] = {}
    blobs = []
    offset = 0
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        raw = arr.tobytes()
        header[name] = {
            "dtype": names[arr.dtype],
            "shape": list(arr.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        blobs.append(raw)
        offset += len(raw)
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)  # the format aligns the data to 8 bytes
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for raw in blobs:
            f.write(raw)


# --- pytorch_model.bin: a zip holding a pickle whose tensors point at raw storage files.
# The unpickler below only rebuilds tensors and ordered dicts: nothing else is importable,
# so a checkpoint cannot run code while it is read.

_TORCH_STORAGES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "BFloat16Storage": "bf16",
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _StorageType:
    def __init__(self, name: str) -> None:
        self.dtype = _TORCH_STORAGES[name]


def _rebuild_tensor(storage, offset, size, stride, *args):
    itemsize = 4 if isinstance(storage.dtype, str) else np.dtype(storage.dtype).itemsize
    if not size:
        return storage[offset : offset + 1].reshape(())
    return np.lib.stride_tricks.as_strided(
        storage[offset:], shape=tuple(size), strides=tuple(s * itemsize for s in stride)
    ).copy()


class _TorchUnpickler(pickle.Unpickler):
    def __init__(self, file, archive: zipfile.ZipFile, prefix: str) -> None:
        super().__init__(file)
        self._archive = archive
        self._prefix = prefix
        self._storages: dict[str, np.ndarray] = {}

    def find_class(self, module: str, name: str):
        if module == "collections" and name == "OrderedDict":
            import collections

            return collections.OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch" and name in _TORCH_STORAGES:
            return _StorageType(name)
        raise pickle.UnpicklingError(
            f"pytorch_model.bin refers to {module}.{name}: colmax reads plain state dicts only; "
            "convert the checkpoint to safetensors"
        )

    def persistent_load(self, pid):
        _, storage_type, key, _location, _numel = pid
        if key not in self._storages:
            raw = self._archive.read(f"{self._prefix}/data/{key}")
            if storage_type.dtype == "bf16":
                arr = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
            else:
                arr = np.frombuffer(raw, storage_type.dtype)
            self._storages[key] = arr
        return self._storages[key]


def read_torch_bin(path: str | Path) -> dict[str, np.ndarray]:
    """Tensors of a ``pytorch_model.bin`` state dict (the zip format of torch >= 1.6)."""
    path = Path(path)
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path} uses torch's legacy (pre-1.6) format, which colmax cannot read without torch; "
            "re-save it as safetensors"
        )
    with zipfile.ZipFile(path) as archive:
        pkl = next((n for n in archive.namelist() if n.endswith("/data.pkl")), None)
        if pkl is None:
            raise ValueError(f"{path} is a zip but not a torch checkpoint (no data.pkl)")
        prefix = pkl[: -len("/data.pkl")]
        import io

        state = _TorchUnpickler(io.BytesIO(archive.read(pkl)), archive, prefix).load()
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict")
    return {k: np.asarray(v) for k, v in state.items()}


def read_weights(model_dir: str | Path) -> dict[str, np.ndarray]:
    """The weights of a Hugging Face checkpoint directory (safetensors preferred)."""
    model_dir = Path(model_dir)
    single = model_dir / "model.safetensors"
    if single.exists():
        return read_safetensors(single)
    index = model_dir / "model.safetensors.index.json"
    if index.exists():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        out: dict[str, np.ndarray] = {}
        for shard in shards:
            out.update(read_safetensors(model_dir / shard))
        return out
    binary = model_dir / "pytorch_model.bin"
    if binary.exists():
        return read_torch_bin(binary)
    raise FileNotFoundError(
        f"no weights in {model_dir}: expected model.safetensors, model.safetensors.index.json "
        "or pytorch_model.bin"
    )
