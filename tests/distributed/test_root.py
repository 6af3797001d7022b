"""The parts of a sharded index that need no Ray: the router, the root description, creating the
directory, `colmax info ROOT`, and that `import colmax` never imports Ray."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest
from colmax.cli.main import main
from colmax.distributed.layout import create_root, local_info
from colmax.distributed.root import ROOT_FILE, read_root
from colmax.distributed.router import route, shard_of
from colmax.index import Index, IndexFormatError, IndexVersionError
from colmax.index.defaults import default_storage
from colmax.index.manifest import body_checksum


def test_the_router_is_stable_and_even():
    # pinned: a change here moves documents between shards of every existing sharded index
    assert [shard_of(i, 7) for i in ("a", "doc-1", "é", "")] == [4, 4, 5, 5]
    counts = Counter(shard_of(f"id-{i}", 8) for i in range(8000))
    assert len(counts) == 8 and max(counts.values()) < 1.1 * 1000
    groups = route(["x", "y", "z", "x2"], 3)
    assert sorted(i for g in groups for i in g) == [0, 1, 2, 3]
    assert all(shard_of(["x", "y", "z", "x2"][i], 3) == s for s, g in enumerate(groups) for i in g)
    # the same in another process (Python's own string hash is salted per process)
    code = "from colmax.distributed.router import shard_of; print(shard_of('doc-1', 7))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "4"


def test_root_description_is_checked(tmp_path):
    create_root(tmp_path / "s", 3, dim=8)
    root = read_root(tmp_path / "s")
    assert root.n_shards == 3 and root.generation == 0 and root.kind == "exact"
    assert root.storage == default_storage()  # what Index.create gives an exact index
    for i in range(3):  # each shard is an ordinary index
        assert len(Index.open(tmp_path / "s" / f"shard-{i:03d}")) == 0
    path = tmp_path / "s" / ROOT_FILE
    body = json.loads(path.read_text())
    path.write_text(json.dumps({**body, "generation": 5}))
    with pytest.raises(IndexFormatError, match="checksum"):
        read_root(tmp_path / "s")
    newer = {**body, "format_version": 99}
    newer["checksum"] = body_checksum(newer)
    path.write_text(json.dumps(newer))
    with pytest.raises(IndexVersionError, match="upgrade colmax"):
        read_root(tmp_path / "s")
    path.write_text("{")
    with pytest.raises(IndexFormatError, match="not valid JSON"):
        read_root(tmp_path / "s")
    with pytest.raises(IndexFormatError, match="not a colmax sharded index"):
        read_root(tmp_path)
    with pytest.raises(FileNotFoundError):
        read_root(tmp_path / "nowhere")


def test_create_checks_its_arguments_and_leaves_nothing_behind(tmp_path):
    with pytest.raises(ValueError, match="n_shards must be >= 1"):
        create_root(tmp_path / "a", 0, dim=8)
    with pytest.raises(ValueError, match="storage must be one of"):
        create_root(tmp_path / "a", 2, dim=8, storage="int3")
    assert not (tmp_path / "a").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(FileExistsError, match="not an empty directory"):
        create_root(tmp_path / "full", 2, dim=8)
    create_root(tmp_path / "p", 2, dim=32, kind="plaid", nbits=2)
    assert read_root(tmp_path / "p").codebook == {"nbits": 2, "n_centroids": None}


def test_colmax_info_describes_a_sharded_index(tmp_path, capsys):
    create_root(tmp_path / "s", 2, dim=8)
    Index.open(tmp_path / "s" / "shard-001").close()
    assert main(["info", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert "sharded index:" in out and "over 2 shards" in out and "shard   1  shard-001  generation 0" in out
    info = local_info(tmp_path / "s")
    assert info["documents"] == 0 and [s["generation"] for s in info["shards"]] == [0, 0]


def test_import_colmax_does_not_import_ray():
    code = "import sys, colmax; colmax.ShardedIndex; print('ray' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
    )


def test_plaid_shards_split_one_index_candidate_budget():
    from colmax.distributed.sharded import shard_candidates

    assert [shard_candidates(10, s) for s in (1, 2, 3, 10, 100)] == [256, 152, 108, 40, 10]
    assert shard_candidates(100, 4) == 452  # 16 k = 1,600 in one index
