"""The --model flags of `colmax index`, `search` and `eval` with a tiny converted checkpoint (the
recorded model, a moved one, a wrong one) and `colmax index` committing chunk by chunk; results
checked against the encoder + NumPy."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
from colmax.cli import main
from tiny_checkpoints import TINY_DOCS, TINY_QUERY, maxsim_scores, tiny_model

DOCS, QUERY = TINY_DOCS, TINY_QUERY


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {"a": tiny_model(root / "a"), "wide": tiny_model(root / "wide", dim=24)}


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in DOCS.items()))
    return path


def ranking(model_dir) -> list[tuple[str, float]]:
    return sorted(maxsim_scores(model_dir).items(), key=lambda kv: -kv[1])


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def index_float32(capsys, corpus, out, model):
    """`colmax index` with float32 storage: the scores are compared with the model's own to 1e-4."""
    return run(capsys, "index", corpus, "-o", out, "--model", model, "--storage", "float32", "--no-progress")


def test_index_search_eval_with_a_model_directory(capsys, tmp_path, corpus, models):
    model = tmp_path / "model"
    shutil.copytree(models["a"], model)
    code, out, _ = index_float32(capsys, corpus, tmp_path / "ix", model)
    assert code == 0 and f"indexed {len(DOCS)} documents" in out
    want = ranking(models["a"])

    def search(*extra):
        code, out, err = run(capsys, "search", tmp_path / "ix", QUERY, "--json", "--mode", "semantic", *extra)
        assert code == 0, err
        hits = json.loads(out)["hits"]
        assert [h["id"] for h in hits] == [i for i, _ in want]
        for h, (_, score) in zip(hits, want):
            assert h["score"] == pytest.approx(score, abs=1e-4)

    search()  # the model recorded at index time
    model.rename(tmp_path / "moved")
    code, _, err = run(capsys, "search", tmp_path / "ix", QUERY)
    assert code == 2 and "does not exist" in err and "--model MODEL_DIR" in err
    search("--model", tmp_path / "moved")

    (tmp_path / "q.jsonl").write_text(json.dumps({"_id": "q1", "text": QUERY}) + "\n")
    (tmp_path / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tberlin\t1\n")
    evaluate = [
        "eval",
        tmp_path / "ix",
        "--queries",
        tmp_path / "q.jsonl",
        "--qrels",
        tmp_path / "qrels.tsv",
        "--mode",
        "semantic",
    ]
    code, _, err = run(capsys, *evaluate, "--json")
    assert code == 2 and "--model MODEL_DIR" in err
    code, out, err = run(capsys, *evaluate, "--json", "--model", tmp_path / "moved")
    assert code == 0, err
    rank = [i for i, _ in want].index("berlin") + 1
    assert json.loads(out)["ndcg@10"] == pytest.approx(1 / math.log2(rank + 1))


def test_model_flag_errors(capsys, tmp_path, corpus, models):
    code, _, err = run(
        capsys, "index", corpus, "-o", tmp_path / "ix", "--model", tmp_path / "nowhere", "--no-progress"
    )
    assert code == 2 and "does not exist" in err
    assert not (tmp_path / "ix").exists()  # nothing half-built is left
    checkpoint = models["a"].with_name("a-checkpoint")  # not converted yet
    code, _, err = run(capsys, "index", corpus, "-o", tmp_path / "ix", "--model", checkpoint, "--no-progress")
    assert code == 2 and "colmax convert" in err
    code, _, err = run(
        capsys, "index", corpus, "-o", tmp_path / "ix", "--model", models["wide"], "--no-progress"
    )
    assert code == 0, err
    code, _, err = run(capsys, "search", tmp_path / "ix", QUERY, "--model", models["a"])
    assert code == 2 and "produces 16-dim vectors but the index holds 24-dim" in err


@pytest.mark.parametrize("chunk", [3, 4, 5])  # 4 documents: two chunks, exactly one, one under
def test_index_command_commits_a_chunk_at_a_time(capsys, tmp_path, corpus, models, monkeypatch, chunk):
    from colmax.cli import corpus as corpus_command
    from colmax.index import Index

    monkeypatch.setattr(corpus_command, "CHUNK", chunk)
    code, _, err = index_float32(capsys, corpus, tmp_path / "ix", models["a"])
    assert code == 0, err
    with Index.open(tmp_path / "ix") as index:
        assert index.generation == -(-len(DOCS) // chunk)  # one commit per chunk
        assert index.ids() == list(DOCS) and [index.get(i).text for i in DOCS] == list(DOCS.values())
    code, out, err = run(capsys, "search", tmp_path / "ix", QUERY, "--json", "--mode", "semantic")
    want = ranking(models["a"])
    hits = json.loads(out)["hits"]
    assert [h["id"] for h in hits] == [i for i, _ in want]
    np.testing.assert_allclose([h["score"] for h in hits], [s for _, s in want], atol=1e-4)
