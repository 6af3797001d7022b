"""Indexes built with a converted model directory: the recorded model on reopen, overrides, a
moved, missing, replaced or mismatched model. Scores are checked against the encoder + NumPy."""

from __future__ import annotations

import shutil

import colmax
import pytest
from colmax.encoding.convert import convert
from colmax.index import Index
from colmax.index.manifest import read_manifest
from tiny_checkpoints import (
    TINY_DOCS,
    TINY_QUERY,
    maxsim_scores,
    random_bert,
    tiny_config,
    tiny_model,
    write_hf,
)

DOCS, QUERY = TINY_DOCS, TINY_QUERY


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {
        "a": tiny_model(root / "a", seed=0),
        "b": tiny_model(root / "b", seed=1),  # same shape, other weights
        "wide": tiny_model(root / "wide", seed=0, dim=24),
    }


reference = maxsim_scores


def check_scores(index: Index, model_dir) -> None:
    want = reference(model_dir)
    hits = index.search(QUERY, k=len(DOCS), mode="semantic")  # MaxSim, as the reference
    assert [h.id for h in hits] == sorted(want, key=lambda i: -want[i])
    for h in hits:
        assert h.score == pytest.approx(want[h.id], abs=1e-4)


def build(path, model_dir) -> Index:
    index = Index.create(path, model=model_dir, storage="float32")  # scores compared with the model's
    index.add(list(DOCS.values()), list(DOCS))
    return index


def test_create_with_a_model_directory_and_reopen(tmp_path, models, monkeypatch):
    model = tmp_path / "model"
    shutil.copytree(models["a"], model)
    monkeypatch.chdir(tmp_path)
    with build(tmp_path / "ix", "model") as index:  # a relative path is recorded resolved
        assert index.dim == 16 and index.encoder.path.resolve() == model.resolve()
        check_scores(index, model)
    record = read_manifest(tmp_path / "ix").model
    assert record["path"] == str(model.resolve()) and record["default"] is False
    assert record["name"] == "a-checkpoint"  # the converted checkpoint's name
    assert len(record["onnx_sha256"]) == 64
    assert (record["query_length"], record["document_length"]) == (12, 24)
    monkeypatch.chdir(models["b"])  # elsewhere: the recorded absolute path still resolves
    with Index.open(tmp_path / "ix") as index:
        check_scores(index, model)


def test_open_with_a_model_override(tmp_path, models):
    build(tmp_path / "ix", models["a"]).close()
    moved = tmp_path / "moved"
    shutil.copytree(models["a"], moved)
    with Index.open(tmp_path / "ix", model=moved) as index:
        check_scores(index, moved)
    with Index.open(tmp_path / "ix", model=colmax.Encoder(moved)) as index:
        check_scores(index, moved)
    # an override is the caller's choice: another model of the same dim is used as given
    with Index.open(tmp_path / "ix", model=models["b"]) as index:
        assert index.search(QUERY, k=1, mode="semantic")[0].score == pytest.approx(
            max(reference(models["b"], models["a"]).values()), abs=1e-4
        )


def test_a_moved_model_directory_names_the_fix(tmp_path, models):
    model = tmp_path / "model"
    shutil.copytree(models["a"], model)
    build(tmp_path / "ix", model).close()
    model.rename(tmp_path / "elsewhere")
    with Index.open(tmp_path / "ix") as index:
        assert len(index) == len(DOCS)  # opening and matrix queries need no model
        q = colmax.Encoder(tmp_path / "elsewhere").encode_queries([QUERY])[0]
        assert (
            index.search(q, k=1)[0].id
            == max(reference(tmp_path / "elsewhere").items(), key=lambda x: x[1])[0]
        )
        with pytest.raises(
            FileNotFoundError, match=r"model directory .*model does not exist.*model=MODEL_DIR"
        ):
            index.search(QUERY)
        with pytest.raises(FileNotFoundError, match="--model"):
            index.add(["paris"], ["p2"])
        assert len(index) == len(DOCS)
    with Index.open(tmp_path / "ix", model=tmp_path / "elsewhere") as index:
        check_scores(index, tmp_path / "elsewhere")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Index.open(tmp_path / "ix", model=tmp_path / "nowhere").search(QUERY)


def test_a_replaced_model_is_detected(tmp_path, models):
    model = tmp_path / "model"
    shutil.copytree(models["a"], model)
    build(tmp_path / "ix", model).close()
    shutil.rmtree(model)
    shutil.copytree(models["b"], model)  # same place, same dim, other weights
    with Index.open(tmp_path / "ix") as index, pytest.raises(ValueError, match="differs from the one"):
        index.search(QUERY)


def test_dimension_mismatch(tmp_path, models):
    build(tmp_path / "ix", models["a"]).close()
    with Index.open(tmp_path / "ix", model=models["wide"]) as index:
        with pytest.raises(ValueError, match="produces 24-dim vectors but the index holds 16-dim"):
            index.search(QUERY)
        with pytest.raises(ValueError, match="24-dim"):
            index.add(["paris"], ["p2"])
        assert len(index) == len(DOCS)
    with pytest.raises(ValueError, match=r"dim=8 but the model .* produces 16-dim"):
        Index.create(tmp_path / "other", model=models["a"], dim=8)
    embeddings_only = Index.create(tmp_path / "emb", dim=16, storage="float32")
    with pytest.raises(ValueError, match="no model"):
        embeddings_only.search(QUERY)
    with Index.open(tmp_path / "emb", model=models["a"]) as index:  # a model can be attached later
        index.add(list(DOCS.values()), list(DOCS))
        check_scores(index, models["a"])


def test_text_queries_past_the_limit_are_refused_alike(tmp_path):
    """search, search_batch, rerank and explain agree: a text that fits exactly is searched, one
    token more is refused (a plain encoder has no [MASK] expansion to cut queries by design)."""
    model = convert(write_hf(tmp_path / "hf", tiny_config(), random_bert(tiny_config())), tmp_path / "plain")
    index = build(tmp_path / "ix", model)
    fits, over = "paris " * 62, "paris " * 63  # [CLS] + 62 + [SEP] = the 64 positions
    assert index.encoder.encode_queries([fits]).lengths.tolist() == [64]
    hits = index.search(fits, k=2)
    assert [(h.id, h.score) for h in index.search_batch(["colbert", fits], k=2)[1]] == [
        (h.id, h.score) for h in hits
    ]
    limit = "is longer than the model's limit of 64 tokens"
    with pytest.raises(ValueError, match=f"the query {limit}"):
        index.search(over)
    with pytest.raises(ValueError, match=f"query 1 {limit}"):
        index.search_batch(["colbert", over])
    with pytest.raises(ValueError, match=limit):
        index.rerank(over, ["paris"])
    with pytest.raises(ValueError, match=limit):
        index.explain(over, "paris")
    # with [MASK] expansion queries are cut to query_length by design, in both
    expanded = build(tmp_path / "expanded", tiny_model(tmp_path / "stanford"))
    long_query = "what is the capital of france " * 5
    assert [h.id for h in expanded.search_batch([long_query], k=3)[0]] == [
        h.id for h in expanded.search(long_query, k=3)
    ]
