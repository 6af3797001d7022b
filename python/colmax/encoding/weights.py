"""Read checkpoint tensors into NumPy without torch: safetensors and pytorch_model.bin.

Both readers treat the file as hostile: every offset, size and stride is checked against the
bytes that back it before memory is touched, nothing but tensors and dicts can be built while
a pickle is read, and what is allocated stays proportional to the file's size. A refusal is a
:class:`CheckpointError`.
"""

from __future__ import annotations

import collections
import io
import json
import math
import pickle
import pickletools
import re
import struct
import zipfile
from pathlib import Path

import numpy as np

from .models import ModelFormatError, read_json_object

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
_MAX_RANK = 8  # no weight of a supported model has more dimensions; more means a crafted file
_MAX_SAFETENSORS_HEADER = 100_000_000  # the safetensors format's own limit
_FIX = "the file is damaged or crafted: re-save the checkpoint with its original library"


class CheckpointError(ModelFormatError):
    """A checkpoint file is damaged, crafted, or holds something other than plain tensors.

    Raised before any of the file's data is used; ``colmax convert`` prints it as an error
    (exit code 2).
    """


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _widen_bf16(raw: bytes) -> np.ndarray:
    """bfloat16 bits -> float32 (NumPy has no bfloat16; widening is exact)."""
    return (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)


# --- safetensors: u64 header length, a JSON header of {name: {dtype, shape, data_offsets}}, data.


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise CheckpointError(f"the header names a tensor twice; {_FIX}")
    return dict(pairs)


def _safetensors_header(path: Path, data: bytes) -> tuple[dict, int]:
    if len(data) < 8:
        raise CheckpointError(f"{path} is not a safetensors file (too short)")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > min(len(data) - 8, _MAX_SAFETENSORS_HEADER):
        raise CheckpointError(f"{path}: its header claims {header_len} bytes, past the end; {_FIX}")
    try:
        header = json.loads(data[8 : 8 + header_len], object_pairs_hook=_no_duplicates)
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise CheckpointError(f"{path} is not a safetensors file: {e}") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: the safetensors header must be a JSON object; {_FIX}")
    return header, 8 + header_len


def _safetensors_entry(path: Path, name: str, info, data_len: int) -> tuple[str, tuple[int, ...], int, int]:
    """(dtype, shape, start, end) of one header entry, every field checked against the file."""
    bad = f"{path}: tensor {name!r}"
    if not isinstance(info, dict):
        raise CheckpointError(f"{bad} has no dtype/shape/data_offsets entry; {_FIX}")
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if dtype != "BF16" and dtype not in _SAFETENSORS_DTYPES:
        raise CheckpointError(f"{bad} has unsupported dtype {dtype!r}")
    if not isinstance(shape, list) or len(shape) > _MAX_RANK or not all(_is_int(n) and n >= 0 for n in shape):
        raise CheckpointError(f"{bad} has shape {shape!r}: expected up to {_MAX_RANK} sizes >= 0; {_FIX}")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(o) for o in offsets)):
        raise CheckpointError(f"{bad} has data_offsets {offsets!r}: expected [start, end]; {_FIX}")
    start, end = offsets
    if not 0 <= start <= end <= data_len:
        raise CheckpointError(
            f"{bad} spans bytes {start}..{end} of a data section of {data_len} bytes; {_FIX}"
        )
    itemsize = 2 if dtype == "BF16" else np.dtype(_SAFETENSORS_DTYPES[dtype]).itemsize
    if end - start != math.prod(shape) * itemsize:
        raise CheckpointError(
            f"{bad} declares shape {tuple(shape)} of {dtype} ({math.prod(shape) * itemsize} bytes) "
            f"but spans {end - start} bytes; {_FIX}"
        )
    return dtype, tuple(shape), start, end


def read_safetensors(path: str | Path) -> dict[str, np.ndarray]:
    """All tensors of a ``.safetensors`` file; CheckpointError if the header does not fit the file.

    bfloat16 tensors are widened to float32 (NumPy has no bfloat16). Tensors may not overlap.
    """
    path = Path(path)
    data = path.read_bytes()
    header, base = _safetensors_header(path, data)
    entries = {
        name: _safetensors_entry(path, name, info, len(data) - base)
        for name, info in header.items()
        if name != "__metadata__"
    }
    spans = sorted((start, end, name) for name, (_, _, start, end) in entries.items() if end > start)
    for (_, end, first), (start, _, second) in zip(spans, spans[1:]):
        if start < end:
            raise CheckpointError(f"{path}: tensors {first!r} and {second!r} overlap; {_FIX}")
    out: dict[str, np.ndarray] = {}
    for name, (dtype, shape, start, end) in entries.items():
        raw = data[base + start : base + end]
        arr = _widen_bf16(raw) if dtype == "BF16" else np.frombuffer(raw, _SAFETENSORS_DTYPES[dtype])
        out[name] = arr.reshape(shape)
    return out


def write_safetensors(path: str | Path, tensors: dict[str, np.ndarray]) -> None:
    """Write float32/int tensors as a ``.safetensors`` file (used by tests and fixtures)."""
    names = {np.dtype(v): k for k, v in _SAFETENSORS_DTYPES.items()}
    header: dict[str, dict] = {}
    blobs = []
    offset = 0
    for name, arr in tensors.items():
        arr = np.asarray(arr, order="C")  # not ascontiguousarray: it makes scalars shape (1,)
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


# --- pytorch_model.bin: a zip holding data.pkl, a pickle whose tensors point at raw storage
# members data/<key>. The unpickler can only build dicts, storages and tensors (find_class
# allows nothing else), and each tensor is checked against its storage before it is copied out.

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
_REBUILDERS = ("_rebuild_tensor_v2", "_rebuild_tensor")
_STORAGE_KEY = re.compile(r"[A-Za-z0-9_]+")
# Members may decompress to this many times the archive's size in total: torch stores them
# uncompressed, so only a zip bomb (or many names for the same bytes) comes near it.
_EXPANSION = 4
# Rebuilt tensors may hold this many times their storages' elements (tied weights share one
# storage), plus a little for zero strides over tiny storages.
_VIEW_FACTOR, _VIEW_SLACK = 4, 1 << 20


class _Allowed:
    """An object a checkpoint's pickle may name. Immutable: a BUILD opcode cannot alter it."""

    __slots__ = ("call", "name")

    def __init__(self, name: str, call=None) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "call", call)

    def __setattr__(self, key, value):
        raise pickle.UnpicklingError(f"the pickle tries to modify {self.name}")

    def __setstate__(self, state):
        raise pickle.UnpicklingError(f"the pickle tries to modify {self.name}")

    def __call__(self, *args):
        if self.call is None:
            raise pickle.UnpicklingError(f"{self.name} is not callable")
        return self.call(*args)


class _Storage:
    __slots__ = ("array", "key", "kind")

    def __init__(self, key: str, kind: str, array: np.ndarray) -> None:
        self.key, self.kind, self.array = key, kind, array


def _check_opcodes(path: Path, data: bytes) -> None:
    """Walk the pickle's opcodes without running any: refuse foreign names, out-of-band buffers
    and memo indices that would make the unpickler allocate far more than the file holds."""
    try:
        ops = list(pickletools.genops(data))
    except ValueError as e:  # pickletools' word for a malformed or truncated stream
        raise CheckpointError(f"{path}: malformed pickle ({e}); {_FIX}") from None
    for opcode, arg, _ in ops:
        name = opcode.name
        if name in ("NEXT_BUFFER", "READONLY_BUFFER"):
            raise CheckpointError(
                f"{path}: the pickle refers to out-of-band (protocol 5) buffers, which torch.save "
                f"never writes; {_FIX}"
            )
        if name.startswith("EXT"):
            raise CheckpointError(f"{path}: the pickle uses the copyreg extension registry; {_FIX}")
        if name in ("GLOBAL", "INST"):
            _allowed_name(path, *str(arg).split(" ", 1))
        if name in ("PUT", "BINPUT", "LONG_BINPUT") and not 0 <= int(arg) < len(data):
            raise CheckpointError(f"{path}: the pickle's memo index {arg} is out of range; {_FIX}")


def _allowed_name(path: Path, module: str, name: str = "") -> None:
    if (module, name) == ("collections", "OrderedDict"):
        return
    if (module == "torch._utils" and name in _REBUILDERS) or (module == "torch" and name in _TORCH_STORAGES):
        return
    raise CheckpointError(
        f"{path} refers to {module}.{name}: colmax reads plain state dicts only (tensors in a "
        "dict) and never runs code from a checkpoint; convert it to safetensors"
    )


class _TorchUnpickler(pickle.Unpickler):
    def __init__(self, path: Path, data: bytes, archive: _Archive, prefix: str) -> None:
        super().__init__(io.BytesIO(data))
        self._path = path
        self._archive = archive
        self._prefix = prefix
        self._storages: dict[str, _Storage] = {}
        self._storage_elements = 0
        self._view_elements = 0
        self._rebuild = _Allowed("torch._utils._rebuild_tensor_v2", self._tensor)
        self._kinds = {name: _Allowed(name) for name in _TORCH_STORAGES}

    def find_class(self, module: str, name: str):
        _allowed_name(self._path, module, name)
        if module == "collections":
            return collections.OrderedDict
        return self._rebuild if module == "torch._utils" else self._kinds[name]

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise CheckpointError(f"{self._path}: unexpected persistent id {pid!r}; {_FIX}")
        _, kind, key, _location, numel = pid
        if not (isinstance(kind, _Allowed) and kind.name in _TORCH_STORAGES):
            raise CheckpointError(f"{self._path}: storage {key!r} has no storage type; {_FIX}")
        if not (isinstance(key, str) and _STORAGE_KEY.fullmatch(key)):
            raise CheckpointError(f"{self._path}: storage key {key!r} is not a plain name; {_FIX}")
        if not (_is_int(numel) and numel >= 0):
            raise CheckpointError(f"{self._path}: storage {key!r} declares {numel!r} elements; {_FIX}")
        cached = self._storages.get(key)
        if cached is not None:
            if cached.kind != kind.name or cached.array.size != numel:
                raise CheckpointError(f"{self._path}: storage {key!r} is declared twice, differently; {_FIX}")
            return cached
        dtype = _TORCH_STORAGES[kind.name]
        itemsize = 2 if dtype == "bf16" else np.dtype(dtype).itemsize
        raw = self._archive.read(f"{self._prefix}/data/{key}", numel * itemsize)
        array = _widen_bf16(raw) if dtype == "bf16" else np.frombuffer(raw, dtype)
        self._storages[key] = storage = _Storage(key, kind.name, array)
        self._storage_elements += numel
        return storage

    def _tensor(self, storage, offset, size, stride, *_):
        """torch._utils._rebuild_tensor_v2, after checking every index stays inside the storage."""
        if not isinstance(storage, _Storage):
            raise CheckpointError(f"{self._path}: a tensor is not backed by a storage; {_FIX}")
        where = f"{self._path}: a tensor of storage {storage.key!r}"
        available = storage.array.size
        if not (isinstance(size, tuple) and isinstance(stride, tuple) and len(size) == len(stride)):
            raise CheckpointError(f"{where} has size {size!r} and stride {stride!r}; {_FIX}")
        if len(size) > _MAX_RANK:
            raise CheckpointError(f"{where} has {len(size)} dimensions (at most {_MAX_RANK}); {_FIX}")
        if not all(_is_int(n) and n >= 0 for n in size) or not all(_is_int(s) and s >= 0 for s in stride):
            raise CheckpointError(
                f"{where} has size {size} and stride {stride}: both must be integers >= 0; {_FIX}"
            )
        if not (_is_int(offset) and 0 <= offset <= available):
            raise CheckpointError(f"{where} starts at {offset!r}, outside its {available} elements; {_FIX}")
        numel = math.prod(size)
        if numel == 0:
            return np.zeros(size, storage.array.dtype)
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= available:
            raise CheckpointError(
                f"{where} (offset {offset}, size {size}, stride {stride}) reaches element {last} "
                f"of a storage of {available}; {_FIX}"
            )
        self._view_elements += numel
        if self._view_elements > _VIEW_FACTOR * self._storage_elements + _VIEW_SLACK:
            raise CheckpointError(
                f"{self._path}: its tensors would hold {self._view_elements} elements from storages "
                f"of {self._storage_elements}; {_FIX}"
            )
        itemsize = storage.array.itemsize
        view = np.lib.stride_tricks.as_strided(
            storage.array[offset:], shape=size, strides=tuple(s * itemsize for s in stride)
        )
        return view.copy()


class _Archive:
    """A torch zip opened defensively: member names checked, reads bounded by the file's size."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with open(path, "rb") as f:
            magic = f.read(4)
        if magic[:1] == b"\x80":
            raise CheckpointError(
                f"{path} uses torch's legacy (pre-1.6) format, which colmax cannot read without "
                "torch; re-save it as safetensors"
            )
        if not magic.startswith(b"PK"):
            raise CheckpointError(
                f"{path} is not a torch checkpoint (neither a zip nor torch's legacy format)"
            )
        try:
            self.zip = zipfile.ZipFile(path)
            infos = self.zip.infolist()
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
            raise CheckpointError(f"{path} is a damaged or truncated zip ({e}); {_FIX}") from None
        try:
            self.names = self._checked_names(infos, path.stat().st_size)
        except BaseException:
            self.zip.close()
            raise
        self.budget = _EXPANSION * path.stat().st_size

    def _checked_names(self, infos: list[zipfile.ZipInfo], size: int) -> set[str]:
        path, names = self.path, set()
        for info in infos:
            name = info.filename
            parts = name.replace("\\", "/").split("/")
            if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name) or ".." in parts:
                raise CheckpointError(f"{path}: member {name!r} is an absolute or '..' path; {_FIX}")
            if name in names:
                raise CheckpointError(f"{path}: member {name!r} appears twice; {_FIX}")
            if info.header_offset + info.compress_size > size:
                raise CheckpointError(f"{path} is truncated: member {name!r} ends past the file; {_FIX}")
            names.add(name)
        return names

    def read(self, name: str, expected: int | None = None) -> bytes:
        if name not in self.names:
            raise CheckpointError(f"{self.path} lacks member {name!r}; {_FIX}")
        info = self.zip.getinfo(name)
        if expected is not None and info.file_size != expected:
            raise CheckpointError(
                f"{self.path}: member {name!r} holds {info.file_size} bytes, its tensors declare "
                f"{expected}; {_FIX}"
            )
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise CheckpointError(f"{self.path}: member {name!r} uses zip compression {info.compress_type}")
        if info.file_size > self.budget:
            raise CheckpointError(f"{self.path}: its members expand past {_EXPANSION}x its size; {_FIX}")
        self.budget -= info.file_size
        try:
            return self.zip.read(info)
        except Exception as e:  # BadZipFile (bad CRC), EOFError (cut short), zlib.error, ...
            raise CheckpointError(f"{self.path}: cannot read member {name!r} ({e}); {_FIX}") from None

    def close(self) -> None:
        self.zip.close()


def read_torch_bin(path: str | Path) -> dict[str, np.ndarray]:
    """Tensors of a ``pytorch_model.bin`` state dict (the zip format of torch >= 1.6).

    Reading runs no code from the file; anything but a dict of tensors that fit their storages
    raises CheckpointError.
    """
    path = Path(path)
    archive = _Archive(path)
    try:
        pickles = [n for n in archive.names if n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise CheckpointError(
                f"{path} is a zip but not a torch checkpoint ({len(pickles)} data.pkl members)"
            )
        prefix = pickles[0][: -len("/data.pkl")]
        if f"{prefix}/byteorder" in archive.names and archive.read(f"{prefix}/byteorder") != b"little":
            raise CheckpointError(f"{path} was saved on a big-endian machine; re-save it as safetensors")
        data = archive.read(pickles[0])
        _check_opcodes(path, data)
        try:
            state = _TorchUnpickler(path, data, archive, prefix).load()
        except CheckpointError:
            raise
        except Exception as e:  # a malformed pickle can raise nearly any exception type
            raise CheckpointError(
                f"{path}: cannot read its pickle ({type(e).__name__}: {e}); {_FIX}"
            ) from None
    finally:
        archive.close()
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} does not hold a state dict (found {type(state).__name__})")
    for key, value in state.items():
        if not (isinstance(key, str) and isinstance(value, np.ndarray)):
            raise CheckpointError(
                f"{path} holds {type(value).__name__} under {key!r}: colmax reads plain state dicts "
                "(names -> tensors); save model.state_dict() or convert to safetensors"
            )
    return dict(state)


def read_weights(model_dir: str | Path) -> dict[str, np.ndarray]:
    """The weights of a Hugging Face checkpoint directory (safetensors preferred)."""
    model_dir = Path(model_dir)
    single = model_dir / "model.safetensors"
    if single.exists():
        return read_safetensors(single)
    index = model_dir / "model.safetensors.index.json"
    if index.exists():
        return _read_sharded(index)
    binary = model_dir / "pytorch_model.bin"
    if binary.exists():
        return read_torch_bin(binary)
    raise FileNotFoundError(
        f"no weights in {model_dir}: expected model.safetensors, model.safetensors.index.json "
        "or pytorch_model.bin"
    )


def _read_sharded(index: Path) -> dict[str, np.ndarray]:
    """A sharded safetensors checkpoint: every tensor of the index's weight_map, from its shard."""
    weight_map = read_json_object(index).get("weight_map")
    if not (isinstance(weight_map, dict) and all(isinstance(v, str) for v in weight_map.values())):
        raise CheckpointError(f"{index} has no weight_map of tensor names to shard files")
    out: dict[str, np.ndarray] = {}
    for shard in sorted(set(weight_map.values())):
        if shard in ("", ".", "..") or "/" in shard or "\\" in shard:
            raise CheckpointError(f"{index} names shard {shard!r}: shards must be files beside the index")
        tensors = read_safetensors(index.parent / shard)
        twice = sorted(set(tensors) & set(out))
        if twice:
            raise CheckpointError(f"{index}: tensor {twice[0]!r} is in two shards")
        out.update(tensors)
    missing = sorted(name for name, shard in weight_map.items() if name not in out)
    if missing:
        raise CheckpointError(f"{index} lists tensor {missing[0]!r} but its shard lacks it")
    return out
