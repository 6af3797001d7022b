"""An evaluation that cannot mislead: judged documents missing from the index are counted (and
none at all is refused), and a model name that looks like a Hub name says how to convert one."""

from __future__ import annotations

import numpy as np
import pytest
from colmax.encoding.models import resolve_model
from colmax.evaluation import evaluate
from colmax.evaluation.run import coverage
from colmax.index import Index

DIM = 8


@pytest.fixture
def index(tmp_path):
    rng = np.random.default_rng(0)
    docs = [rng.standard_normal((3, DIM)).astype(np.float32) for _ in range(4)]
    with Index.create(tmp_path / "ix", dim=DIM) as index:
        index.add_embeddings(docs, ["a", "b", "c", "d"])
        yield index


def test_missing_judged_documents_are_counted(index):
    qrels = {"q1": {"a": 1, "zz": 1}, "q2": {"yy": 2}, "q3": {"b": 1, "c": 0}}
    assert coverage(index, qrels) == {
        "relevant_documents": 4,  # a, b, yy, zz (c is judged not relevant)
        "missing_documents": 2,
        "queries_without_indexed_relevant": 1,  # q2
    }
    queries = {q: np.random.default_rng(1).standard_normal((2, DIM)).astype(np.float32) for q in qrels}
    result = evaluate(index, queries, qrels, k=3)
    assert result["coverage"]["queries_without_indexed_relevant"] == 1


def test_no_judged_document_in_the_index_is_refused(index):
    qrels = {"q1": {"x1": 1}, "q2": {"x2": 1}}
    queries = {q: np.ones((2, DIM), np.float32) for q in qrels}
    with pytest.raises(ValueError, match="none of the 2 relevant documents of the qrels is in the index"):
        evaluate(index, queries, qrels)


def test_a_hub_name_explains_colmax_convert(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"Hugging Face Hub name.*colmax convert ColBERTv2"):
        resolve_model("colbert-ir/ColBERTv2")
    with pytest.raises(FileNotFoundError, match=r"does not exist$"):
        resolve_model("no-such-model")
