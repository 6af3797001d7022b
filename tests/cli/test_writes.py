"""`colmax add | delete | compact | verify | --version` end to end with the packaged default model:
each changes (or checks) the index as the same Index call would, and says what it did."""

from __future__ import annotations

import json

import colmax
import pytest
from colmax.cli import main
from colmax.index import Index


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


@pytest.fixture
def index_dir(tmp_path, capsys):
    corpus = jsonl(
        tmp_path / "docs.jsonl",
        [
            {"_id": "paris", "text": "Paris is the capital of France."},
            {"_id": "berlin", "text": "Berlin is the capital of Germany."},
        ],
    )
    out = tmp_path / "ix"
    assert run(capsys, "index", corpus, "-o", str(out), "--no-progress")[0] == 0
    return out


def test_add_new_ids_only_or_upsert(index_dir, tmp_path, capsys):
    more = jsonl(
        tmp_path / "more.jsonl",
        [
            {"_id": "rome", "text": "Rome is the capital of Italy."},
            {"text": "Madrid is the capital of Spain."},
        ],
    )
    code, out, _ = run(capsys, "add", str(index_dir), more, "--no-progress")
    assert code == 0 and out.startswith(f"added 2 documents to {index_dir}") and "4 documents now" in out
    with Index.open(index_dir) as index:
        generated = [i for i in index.ids() if i not in ("paris", "berlin", "rome")]
        assert len(generated) == 1 and index.get(generated[0]).text == "Madrid is the capital of Spain."
        generation = index.generation
    # the same file again: nothing new (the line without _id gets the same id from its content)
    code, out, _ = run(capsys, "add", str(index_dir), more, "--no-progress")
    assert code == 0 and "added 0 documents" in out and "2 already there, left out" in out
    assert Index.open(index_dir).generation == generation  # no empty commit
    changed = jsonl(tmp_path / "changed.jsonl", [{"_id": "rome", "text": "Rome lies on the Tiber."}])
    code, out, _ = run(capsys, "add", str(index_dir), changed, "--upsert", "--no-progress")
    assert code == 0 and "(1 replaced)" in out and "4 documents now" in out
    with Index.open(index_dir) as index:
        assert index.get("rome").text == "Rome lies on the Tiber." and len(index) == 4


def test_delete_by_ids_and_file_all_or_nothing(index_dir, tmp_path, capsys):
    code, _, err = run(capsys, "delete", str(index_dir), "paris", "nowhere")
    assert code == 2 and "nowhere" in err
    assert len(Index.open(index_dir)) == 2  # nothing deleted
    code, _, err = run(capsys, "delete", str(index_dir))
    assert code == 2 and "--ids-file" in err
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("\ufeffberlin\n\n", encoding="utf-8")
    code, out, _ = run(capsys, "delete", str(index_dir), "paris", "--ids-file", str(ids_file))
    assert code == 0 and out == f"deleted 2 documents from {index_dir}; 0 documents now\n"
    with Index.open(index_dir) as index:
        assert len(index) == 0 and index.info()["deleted"] == 2


def test_compact_then_verify_and_version(index_dir, capsys):
    assert run(capsys, "delete", str(index_dir), "berlin")[0] == 0
    code, out, _ = run(capsys, "compact", str(index_dir))
    assert code == 0 and out.startswith(f"compacted {index_dir}") and "1 deleted passages removed" in out
    with Index.open(index_dir) as index:
        assert index.info()["deleted"] == 0 and index.ids() == ["paris"]
    code, out, _ = run(capsys, "verify", str(index_dir))
    assert code == 0 and out.startswith(f"{index_dir} is intact") and "store checked" in out
    code, out, _ = run(capsys, "info", str(index_dir))
    assert code == 0 and "(this commit)" in out
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out == f"colmax {colmax.__version__}\n"
