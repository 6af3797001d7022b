"""Checkpoint readers against crafted files: code in pickles never runs, every tensor is checked
against the bytes behind it, allocation stays bounded, and each refusal is a CheckpointError."""

from __future__ import annotations

import json
import os
import pickle
import re
import struct
import subprocess
import sys
import tracemalloc
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from colmax.encoding import CheckpointError, ModelFormatError
from colmax.encoding.weights import read_safetensors, read_torch_bin, read_weights, write_safetensors
from tiny_checkpoints import (
    global_op,
    pickled,
    random_bert,
    tiny_config,
    torch_state,
    torch_tensor,
    write_hf,
    write_torch_bin,
    write_torch_zip,
)

FOUR_FLOATS = np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32).tobytes()
PEAK_LIMIT = 16 << 20  # bytes: every refusal below must come without a large allocation


def refuse(path, match: str) -> CheckpointError:
    """read_torch_bin(path) raises CheckpointError matching ``match`` and allocates little."""
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match=match) as caught:
            read_torch_bin(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < PEAK_LIMIT, f"refusing {path.name} allocated {peak} bytes"
    assert isinstance(caught.value, ModelFormatError) and isinstance(caught.value, ValueError)
    return caught.value


def one_tensor(tmp_path, numel, offset, size, stride, raw=FOUR_FLOATS, kind="FloatStorage", key="0"):
    data = torch_state({"w": torch_tensor(kind, key, numel, offset, size, stride)})
    return write_torch_zip(tmp_path / "t.bin", data, {"0": raw})


# --- what a real checkpoint holds is read exactly


def test_torch_reader_round_trip(tmp_path):
    tensors = {
        "f32": np.arange(6, dtype=np.float32).reshape(2, 3),
        "f16": np.arange(4, dtype=np.float16) / 4,
        "f64": np.array([[0.5]]),
        "i64": np.array([7, -8], dtype=np.int64),
        "mask": np.array([True, False]),
        "scalar": np.array(3.5, dtype=np.float32),
        "empty": np.zeros((0, 4), dtype=np.float32),
    }
    back = read_torch_bin(write_torch_bin(tmp_path / "m.bin", tensors))
    assert list(back) == list(tensors)
    for name, want in tensors.items():
        assert back[name].dtype == want.dtype and back[name].shape == want.shape, name
        np.testing.assert_array_equal(back[name], want)


def test_torch_reader_views_of_shared_storages(tmp_path):
    # what torch.save writes for a transpose, a slice, a broadcast row and a bf16 tensor
    storage = np.arange(10, dtype=np.float32).tobytes()
    bf16 = (np.array([1.5, -2.0, 3.140625], dtype=np.float32).view(np.uint32) >> 16).astype(np.uint16)
    data = torch_state(
        {
            "transposed": torch_tensor("FloatStorage", "0", 10, 0, (3, 2), (1, 3)),
            "slice": torch_tensor("FloatStorage", "0", 10, 4, (3,), (1,)),
            "broadcast": torch_tensor("FloatStorage", "0", 10, 9, (2, 3), (0, 0)),
            "bf16": torch_tensor("BFloat16Storage", "1", 3, 0, (3,), (1,)),
        }
    )
    back = read_torch_bin(write_torch_zip(tmp_path / "v.bin", data, {"0": storage, "1": bf16.tobytes()}))
    np.testing.assert_array_equal(back["transposed"], np.arange(6, dtype=np.float32).reshape(2, 3).T)
    np.testing.assert_array_equal(back["slice"], [4, 5, 6])
    np.testing.assert_array_equal(back["broadcast"], np.full((2, 3), 9.0))
    assert back["bf16"].dtype == np.float32
    np.testing.assert_array_equal(back["bf16"], [1.5, -2.0, 3.140625])
    assert back["transposed"].flags.writeable  # a copy, not a view of the archive's bytes


# --- code in a pickle never runs


class _Reduce:
    def __init__(self, call, args):
        self.call, self.args = call, args

    def __reduce__(self):
        return self.call, self.args


def _payload(kind: str, sentinel) -> _Reduce:
    write = f"open({str(sentinel)!r}, 'w').close()"
    return {
        "os.system": _Reduce(os.system, (f"touch '{sentinel}'",)),
        "eval": _Reduce(eval, (write,)),
        "builtins.exec": _Reduce(exec, (write,)),
    }[kind]


@pytest.mark.parametrize("protocol", [0, 2, 4])
@pytest.mark.parametrize("kind", ["os.system", "eval", "builtins.exec"])
def test_code_in_the_pickle_never_runs(tmp_path, kind, protocol):
    sentinel = tmp_path / "ran"
    data = pickle.dumps({"w": _payload(kind, sentinel)}, protocol=protocol)
    pickle.loads(data)  # the payload is armed: a plain unpickler runs it
    assert sentinel.exists()
    sentinel.unlink()
    refuse(write_torch_zip(tmp_path / "evil.bin", data, {}), "never runs code")
    assert not sentinel.exists()


def test_code_in_a_tensor_argument_never_runs(tmp_path):
    sentinel = tmp_path / "ran"
    evil = pickle.dumps(_payload("os.system", sentinel), protocol=2)[2:-1]
    tensor = torch_tensor("FloatStorage", "0", 4, 0, (4,), (1,)).replace(pickled((4,)), evil, 1)
    refuse(write_torch_zip(tmp_path / "evil.bin", torch_state({"w": tensor}), {"0": FOUR_FLOATS}), "posix")
    assert not sentinel.exists()


def _stack_global(module: str, name: str) -> bytes:
    return (
        b"\x8c"
        + bytes([len(module)])
        + module.encode()
        + b"\x8c"
        + bytes([len(name)])
        + name.encode()
        + b"\x93"
    )


@pytest.mark.parametrize(
    "module, name",
    [
        ("torch.nn.modules.linear", "Linear"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("torch._utils", "_rebuild_parameter"),
        ("torch", "load"),
        ("collections", "deque"),
        ("builtins", "getattr"),
    ],
)
@pytest.mark.parametrize("opcode", ["GLOBAL", "STACK_GLOBAL"])
def test_names_outside_the_allow_list_are_refused(tmp_path, module, name, opcode):
    push = global_op(module, name) if opcode == "GLOBAL" else _stack_global(module, name)
    data = torch_state({"w": push + b")R"})  # called with no arguments
    error = refuse(write_torch_zip(tmp_path / "g.bin", data, {}), "never runs code")
    assert f"{module}.{name}" in str(error)


def test_out_of_band_buffers_are_refused(tmp_path):
    buffers: list = []
    data = pickle.dumps({"w": pickle.PickleBuffer(b"abcd")}, protocol=5, buffer_callback=buffers.append)
    assert buffers  # the buffer went out of band
    refuse(write_torch_zip(tmp_path / "p5.bin", data, {}), "out-of-band")


def test_allowed_names_cannot_be_modified(tmp_path):
    # BUILD on a storage type would let a later tensor pick its own dtype
    built = global_op("torch", "FloatStorage") + pickled({"name": "DoubleStorage"}) + b"b"
    refuse(write_torch_zip(tmp_path / "b.bin", torch_state({"w": built}), {}), "modify")


def test_memo_and_length_fields_cannot_force_allocations(tmp_path):
    # a memo index of 2**24 makes CPython's unpickler allocate and fill 256 MiB of memo
    memo = b"\x80\x02}r" + struct.pack("<I", 1 << 24) + b"."
    refuse(write_torch_zip(tmp_path / "memo.bin", memo, {}), "memo index")
    # a bytes object declared 1 TiB long
    huge = b"\x80\x04\x8e" + struct.pack("<Q", 1 << 40) + b"x."
    refuse(write_torch_zip(tmp_path / "bytes.bin", huge, {}), "malformed pickle")


def test_only_dicts_of_tensors_are_returned(tmp_path):
    refuse(write_torch_zip(tmp_path / "l.bin", pickle.dumps([1, 2], protocol=2), {}), "not hold a state dict")
    data = torch_state({"epoch": pickled(3)})
    refuse(write_torch_zip(tmp_path / "d.bin", data, {}), "int under 'epoch'")


# --- every tensor is checked against its storage


# Read in a child process: with the bounds checks gone these cases read outside the storage,
# and the third crashed `colmax convert` with SIGSEGV; a crash must fail the test, not pytest.
GEOMETRY = {
    "size past the storage": (0, (5,), (1,), "reaches element 4 of a storage of 4"),
    "stride past the storage": (0, (2, 2), (3, 1), "reaches element 4"),
    "offset past the storage": (3, (2,), (1,), "reaches element 4"),
    "far past (was SIGSEGV)": (0, (1000, 1000), (100000, 1), "reaches element 99900999"),
    "empty tensor outside": (5, (0,), (1,), "outside its 4 elements"),
    "negative offset": (-1, (2,), (1,), "outside its 4 elements"),
    "negative stride": (3, (2,), (-1,), "integers >= 0"),
    "negative size": (0, (-1,), (1,), "integers >= 0"),
    "float size": (0, (2.0,), (1,), "integers >= 0"),
    "bool size": (0, (True,), (1,), "integers >= 0"),
    "rank 9": (0, (1,) * 9, (1,) * 9, "9 dimensions"),
    "size and stride ranks differ": (0, (2, 2), (1,), "has size"),
    "broadcast of 2**80 elements": (0, (1 << 40, 1 << 40), (0, 0), "would hold"),
    "256 MiB from 16 bytes": (0, (1 << 26,), (0,), "would hold"),
}
_CHILD = """
import json, sys, tracemalloc
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from tiny_checkpoints import torch_state, torch_tensor, write_torch_zip
from colmax.encoding.weights import read_torch_bin
out = {}
for case, (offset, size, stride) in json.loads(sys.argv[3]).items():
    data = torch_state({"w": torch_tensor("FloatStorage", "0", 4, offset, tuple(size), tuple(stride))})
    path = write_torch_zip(Path(sys.argv[2]) / "t.bin", data, {"0": bytes(16)})
    tracemalloc.start()
    try:
        read_torch_bin(path)
        out[case] = ["returned", ""]
    except Exception as e:
        out[case] = [type(e).__name__, str(e)]
    out[case].append(tracemalloc.get_traced_memory()[1])
    tracemalloc.stop()
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def geometry(tmp_path_factory):
    cases = {case: spec[:3] for case, spec in GEOMETRY.items()}
    tests_dir = str(Path(__file__).parents[1])
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _CHILD,
            tests_dir,
            str(tmp_path_factory.mktemp("geometry")),
            json.dumps(cases),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"the reader crashed (exit {done.returncode}): {done.stderr[-2000:]}"
    return json.loads(done.stdout)


@pytest.mark.parametrize("case", GEOMETRY)
def test_tensors_outside_their_storage_are_refused(geometry, case):
    kind, message, peak = geometry[case]
    assert kind == "CheckpointError", (kind, message)
    assert re.search(GEOMETRY[case][3], message), message
    assert peak < PEAK_LIMIT


def test_storage_members_are_checked(tmp_path):
    data = torch_state({"w": torch_tensor("FloatStorage", "0", 4, 0, (4,), (1,))})
    refuse(write_torch_zip(tmp_path / "missing.bin", data, {}), "lacks member 'archive/data/0'")
    # a storage declaring 10**15 elements is refused before anything is read
    refuse(one_tensor(tmp_path, 10**15, 0, (4,), (1,)), "holds 16 bytes, its tensors declare")
    refuse(one_tensor(tmp_path, 4, 0, (4,), (1,), raw=FOUR_FLOATS[:12]), "holds 12 bytes")
    refuse(one_tensor(tmp_path, 4, 0, (4,), (1,), key="../../etc/passwd"), "not a plain name")
    refuse(one_tensor(tmp_path, 4, 0, (4,), (1,), kind="CudaFloatStorage"), "torch.CudaFloatStorage")
    twice = torch_state(
        {
            "a": torch_tensor("FloatStorage", "0", 4, 0, (4,), (1,)),
            "b": torch_tensor("FloatStorage", "0", 2, 0, (2,), (1,)),
        }
    )
    refuse(write_torch_zip(tmp_path / "twice.bin", twice, {"0": FOUR_FLOATS}), "declared twice")


# --- the archive itself


def test_truncated_and_damaged_archives(tmp_path):
    whole = write_torch_bin(tmp_path / "ok.bin", {"w": np.arange(64, dtype=np.float32)}).read_bytes()
    for cut in (len(whole) // 2, len(whole) - 10):
        (tmp_path / "cut.bin").write_bytes(whole[:cut])
        refuse(tmp_path / "cut.bin", "damaged or truncated")
    at = whole.index(np.arange(64, dtype=np.float32).tobytes()) + 8
    (tmp_path / "crc.bin").write_bytes(whole[:at] + b"\xff" + whole[at + 1 :])
    refuse(tmp_path / "crc.bin", "cannot read member 'archive/data/0'")


@pytest.mark.parametrize("name", ["../escape/data.pkl", "/abs/data.pkl", "archive/data/../../x", "C:/x"])
def test_member_names_that_escape_are_refused(tmp_path, name):
    data = torch_state({"w": torch_tensor("FloatStorage", "0", 4, 0, (4,), (1,))})
    path = write_torch_zip(tmp_path / "slip.bin", data, {"0": FOUR_FLOATS}, extra=[(name, b"x")])
    refuse(path, "absolute or '..' path")


def test_archive_layout_is_checked(tmp_path):
    data = torch_state({"w": torch_tensor("FloatStorage", "0", 4, 0, (4,), (1,))})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name it writes
        path = write_torch_zip(
            tmp_path / "dup.bin", data, {"0": FOUR_FLOATS}, extra=[("archive/data/0", b"")]
        )
    refuse(path, "appears twice")
    two = write_torch_zip(tmp_path / "two.bin", data, {"0": FOUR_FLOATS}, extra=[("other/data.pkl", data)])
    refuse(two, "2 data.pkl members")
    with zipfile.ZipFile(tmp_path / "big.bin", "w") as archive:
        archive.writestr("archive/byteorder", b"big")
        archive.writestr("archive/data.pkl", data)
    refuse(tmp_path / "big.bin", "big-endian")


def test_zip_bombs_are_refused_before_inflating(tmp_path):
    numel = 8 << 20  # 32 MiB of zeros deflate to ~32 KiB
    data = torch_state({"w": torch_tensor("FloatStorage", "0", numel, 0, (numel,), (1,))})
    path = tmp_path / "bomb.bin"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", data)
        archive.writestr("archive/data/0", bytes(4 * numel))
    assert path.stat().st_size < 1 << 20
    refuse(path, "expand past")


def test_legacy_and_foreign_files(tmp_path):
    legacy = tmp_path / "legacy.bin"  # torch < 1.6 starts with a pickled magic number
    legacy.write_bytes(pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + b"rest")
    refuse(legacy, "legacy")
    (tmp_path / "text.bin").write_text("not a checkpoint")
    refuse(tmp_path / "text.bin", "neither a zip")


# --- the command line reports a crafted checkpoint and exits 2, in a process of its own so that a
# regression to a crash fails this test instead of killing pytest


def _hf_with_bin(tmp_path, tensor_bin) -> str:
    src = write_hf(tmp_path / "src", tiny_config(), random_bert(tiny_config()))
    (src / "model.safetensors").unlink()
    tensor_bin(src / "pytorch_model.bin")
    return str(src)


def _convert(src: str, dst) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "colmax", "convert", src, str(dst)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_reports_a_tensor_past_its_storage(tmp_path):
    def crafted(path):
        data = torch_state({"w": torch_tensor("FloatStorage", "0", 4, 0, (1000, 1000), (100000, 1))})
        write_torch_zip(path, data, {"0": FOUR_FLOATS})

    done = _convert(_hf_with_bin(tmp_path, crafted), tmp_path / "out")
    assert done.returncode == 2, (done.returncode, done.stderr)  # -11 would be the old SIGSEGV
    assert done.stderr.startswith("colmax convert: error: ") and "reaches element" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_cli_reports_code_in_a_checkpoint(tmp_path):
    sentinel = tmp_path / "ran"

    def crafted(path):
        write_torch_zip(path, pickle.dumps({"w": _payload("os.system", sentinel)}, protocol=2), {})

    done = _convert(_hf_with_bin(tmp_path, crafted), tmp_path / "out")
    assert done.returncode == 2 and "posix.system" in done.stderr and "Traceback" not in done.stderr
    assert not sentinel.exists()


# --- safetensors: headers checked against the file; bfloat16; shards


def _safetensors(path, header: dict, data: bytes):
    head = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(head)) + head + data)
    return path


def test_bf16_safetensors_widen_exactly(tmp_path):
    want = np.array([[1.5, -2.0], [3.140625, -0.0078125]], dtype=np.float32)
    bits = (want.view(np.uint32) >> 16).astype(np.uint16)
    header = {
        "w": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 8]},
        "__metadata__": {"format": "pt"},
    }
    back = read_safetensors(_safetensors(tmp_path / "bf16.safetensors", header, bits.tobytes()))
    assert back["w"].dtype == np.float32
    np.testing.assert_array_equal(back["w"], want)


def test_safetensors_scalar_round_trip(tmp_path):
    write_safetensors(tmp_path / "s.safetensors", {"s": np.array(2.5, dtype=np.float32)})
    back = read_safetensors(tmp_path / "s.safetensors")
    assert back["s"].shape == () and back["s"] == 2.5


@pytest.mark.parametrize(
    "entries, match",
    [
        (
            {"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 32]}},
            "spans bytes 0..32 of a data section of 16",
        ),
        ({"w": {"dtype": "F32", "shape": [8], "data_offsets": [0, 16]}}, r"declares shape \(8,\)"),
        ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 4]}}, "spans bytes 8..4"),
        ({"w": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}}, "spans bytes -4..0"),
        ({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, "shape"),
        ({"w": {"dtype": "F32", "shape": [1] * 9, "data_offsets": [0, 4]}}, "shape"),
        ({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0]}}, "data_offsets"),
        ({"w": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}}, "unsupported dtype"),
        ({"w": [0, 4]}, "no dtype/shape"),
        (
            {
                "a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]},
                "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]},
            },
            "'a' and 'b' overlap",
        ),
    ],
)
def test_safetensors_headers_must_fit_the_file(tmp_path, entries, match):
    path = _safetensors(tmp_path / "bad.safetensors", entries, FOUR_FLOATS)
    with pytest.raises(CheckpointError, match=match):
        read_safetensors(path)


def test_safetensors_header_framing(tmp_path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", 1 << 40) + b"{}")
    with pytest.raises(CheckpointError, match="past the end"):
        read_safetensors(path)
    path.write_bytes(b"\x05\x00")
    with pytest.raises(CheckpointError, match="too short"):
        read_safetensors(path)
    head = b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "w": 1}'
    path.write_bytes(struct.pack("<Q", len(head)) + head + FOUR_FLOATS)
    with pytest.raises(CheckpointError, match="names a tensor twice"):
        read_safetensors(path)
    _safetensors(path, [1, 2], b"")
    with pytest.raises(CheckpointError, match="JSON object"):
        read_safetensors(path)


def _shards(directory, weight_map: dict[str, str], shards: dict[str, dict[str, np.ndarray]]):
    directory.mkdir(exist_ok=True)
    for name, tensors in shards.items():
        write_safetensors(directory / name, tensors)
    index = {"metadata": {"total_size": 0}, "weight_map": weight_map}
    (directory / "model.safetensors.index.json").write_text(json.dumps(index))
    return directory


def test_sharded_safetensors(tmp_path):
    a, b, c = (np.full((2, 2), i, dtype=np.float32) for i in range(3))
    shards = {
        "model-00001-of-00002.safetensors": {"a": a, "b": b},
        "model-00002-of-00002.safetensors": {"c": c},
    }
    weight_map = {"a": "model-00001-of-00002.safetensors", "b": "model-00001-of-00002.safetensors"}
    weight_map["c"] = "model-00002-of-00002.safetensors"
    back = read_weights(_shards(tmp_path / "ok", weight_map, shards))
    assert sorted(back) == ["a", "b", "c"]
    for name, want in zip("abc", (a, b, c)):
        np.testing.assert_array_equal(back[name], want)

    escape = _shards(tmp_path / "escape", {"a": "../ok/model-00002-of-00002.safetensors"}, {})
    with pytest.raises(CheckpointError, match="beside the index"):
        read_weights(escape)
    lacking = _shards(
        tmp_path / "lacking", {"a": "s1.safetensors", "z": "s1.safetensors"}, {"s1.safetensors": {"a": a}}
    )
    with pytest.raises(CheckpointError, match="lists tensor 'z'"):
        read_weights(lacking)
    twice = _shards(
        tmp_path / "twice",
        {"a": "s1.safetensors", "b": "s2.safetensors"},
        {"s1.safetensors": {"a": a}, "s2.safetensors": {"a": a, "b": b}},
    )
    with pytest.raises(CheckpointError, match="'a' is in two shards"):
        read_weights(twice)
