"""colmax.evaluation: metric definitions (checked by hand) and the queries / qrels readers."""

from __future__ import annotations

import math

import pytest
from colmax.evaluation import mrr, ndcg, read_qrels, read_queries, recall, score_run
from colmax.evaluation.corpus import CorpusError


def test_ndcg_graded_by_hand():
    grades = {"a": 3, "b": 1, "c": 2, "z": 0}
    ranked = ["b", "x", "a"]
    dcg = 1 / math.log2(2) + 3 / math.log2(4)
    idcg = 3 / math.log2(2) + 2 / math.log2(3) + 1 / math.log2(4)
    assert ndcg(ranked, grades) == pytest.approx(dcg / idcg)
    assert ndcg(["a", "c", "b"], grades) == pytest.approx(1.0)
    assert ndcg(["x"] * 10 + ["a"], grades) == 0.0  # beyond the cutoff
    assert ndcg(["a"], {"a": 0}) == 0.0


def test_recall_and_mrr():
    grades = {"a": 1, "b": 2, "n": 0}
    assert recall(["x", "a"], grades) == 0.5
    assert recall(["n", "x"], grades) == 0.0
    assert recall(["x"] * 100 + ["a", "b"], grades, 100) == 0.0
    assert mrr(["x", "n", "b"], grades) == pytest.approx(1 / 3)
    assert mrr(["x"] * 10 + ["a"], grades) == 0.0


def test_score_run_skips_queries_without_relevant_documents():
    qrels = {"1": {"a": 1}, "2": {"b": 0}}
    result = score_run({"1": ["a"], "2": ["b"]}, qrels)
    assert result["queries"] == 1 and result["ndcg@10"] == 1.0 and result["mrr@10"] == 1.0
    with pytest.raises(ValueError, match="ids"):
        score_run({"9": ["a"]}, qrels)


def test_readers(tmp_path):
    (tmp_path / "q.jsonl").write_text('{"_id": "1", "text": "first"}\n\n{"_id": 2, "text": "second"}\n')
    assert read_queries(tmp_path / "q.jsonl") == {"1": "first", "2": "second"}
    (tmp_path / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\n1\ta\t2\n1\tb\t0\n")
    assert read_qrels(tmp_path / "qrels.tsv") == {"1": {"a": 2, "b": 0}}
    (tmp_path / "trec.txt").write_text("1 0 a 1\n2 0 b 3\n")
    assert read_qrels(tmp_path / "trec.txt") == {"1": {"a": 1}, "2": {"b": 3}}


@pytest.mark.parametrize(
    "content, message",
    [("1 a\n", ":1: expected"), ("1\ta\thigh\n", ":1: the grade 'high'"), ("", "no judgments")],
)
def test_bad_qrels(tmp_path, content, message):
    (tmp_path / "qrels.tsv").write_text(content)
    with pytest.raises(CorpusError, match=message):
        read_qrels(tmp_path / "qrels.tsv")


@pytest.mark.parametrize(
    "content, message",
    [("{bad\n", ":1: not valid JSON"), ('{"_id": "1"}\n', ":1: a query needs"), ("\n", "no queries")],
)
def test_bad_queries(tmp_path, content, message):
    (tmp_path / "q.jsonl").write_text(content)
    with pytest.raises(CorpusError, match=message):
        read_queries(tmp_path / "q.jsonl")
