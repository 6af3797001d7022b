"""`colmax index | search | eval | info | demo` end to end with the packaged default model, and
the text paths of colmax.Index (add, update, explain) that need a real encoder."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import unicodedata

import pytest
from colmax.cli import main
from colmax.cli.demo import SAMPLE
from colmax.index import Index

QUESTION = "What is the capital of France?"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_eval(capsys, index_dir, tmp_path, queries, qrels, *extra):
    """`colmax eval` over ``queries`` ({id: text}) and ``qrels`` (lines "query\tdoc\tgrade\n")."""
    (tmp_path / "q.jsonl").write_text(
        "".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in queries.items())
    )
    (tmp_path / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\n" + qrels)
    return run(
        capsys,
        "eval",
        str(index_dir),
        "--queries",
        str(tmp_path / "q.jsonl"),
        "--qrels",
        str(tmp_path / "qrels.tsv"),
        *extra,
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    rows = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    for i, row in enumerate(rows):
        row["topic"] = "capital" if row["_id"].startswith("capital") else "other"
        row["n"] = i
    path = root / "corpus.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def index_dir(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("idx") / "index"
    assert main(["index", str(corpus), "-o", str(out), "--no-progress"]) == 0
    return out


def test_demo(capsys):
    code, out, _ = run(capsys, "demo")
    assert code == 0
    lines = out.splitlines()
    first = next(line for line in lines if line.strip().startswith("1 "))
    assert "capital-france" in first and "Paris is the capital of France." in first
    assert "capital-germany" in out  # shown with its rank for comparison
    assert "why 'capital-france'" in out and "capital -> capital" in out.replace("  ", " ").replace("  ", " ")
    assert out.count(" sum ") >= 2


def test_seed_case_through_the_index(tmp_path):
    index = Index.create(tmp_path / "ix")
    index.add(["Berlin is the capital of Germany.", "Paris is the capital of France."], ["berlin", "paris"])
    hits = index.search(QUESTION, k=2)
    assert [h.id for h in hits] == ["paris", "berlin"] and hits[0].score > hits[1].score
    assert hits[0].text == "Paris is the capital of France."
    ex = index.explain(QUESTION, "paris")
    assert ex.score == pytest.approx(hits[0].semantic_score, abs=1e-4)  # score: hybrid, fused
    assert ex.query_tokens[0] == "[CLS]" and "france" in ex.query_tokens
    assert ex.doc_tokens[ex.query_tokens.index("france")] == "france"
    # where each matched token is in the text; None for [CLS] and [SEP]
    text = "Paris is the capital of France."
    for token, span in zip(ex.doc_tokens, ex.doc_spans):
        assert (span is None) == (token in ("[CLS]", "[SEP]"))
        assert span is None or text[span[0] : span[1]].lower() == token
    batch = index.search_batch([QUESTION, "German capital city"], k=1)
    assert [b[0].id for b in batch] == ["paris", "berlin"]
    assert [h.id for h in index.rerank(QUESTION, ["berlin", "paris"])] == ["paris", "berlin"]


def test_explain_spans_count_characters(tmp_path):
    """Spans index the stored text as Python does (code points), accents and all."""
    index = Index.create(tmp_path / "ix")
    text = "Zoë\u2019s café \u2014 naïve crème brûlée in Köln."
    index.add([text], ["d"])
    ex = index.explain("crème brûlée café Köln", "d")
    assert "café" in {text[s:e] for s, e in filter(None, ex.doc_spans)}

    def plain(word):  # what the uncased tokenizer makes of a word: lower case, accents dropped
        return "".join(c for c in unicodedata.normalize("NFD", word.lower()) if not unicodedata.combining(c))

    for token, span in zip(ex.doc_tokens, ex.doc_spans):
        if span is not None:
            assert plain(text[span[0] : span[1]]) == token.removeprefix("##")


def test_add_upsert_replaces_in_one_commit(tmp_path):
    index = Index.create(tmp_path / "ix")
    index.add(["Paris is the capital of France.", "Bananas are yellow."], ["paris", "bananas"])
    generation = index.generation
    ids = index.add(
        ["Paris, on the Seine, is France's capital.", "Rome is the capital of Italy."],
        ["paris", "rome"],
        [{"v": 2}, None],
        upsert=True,
    )
    assert ids == ["paris", "rome"] and index.generation == generation + 1 and len(index) == 3
    assert index.get("paris").text == "Paris, on the Seine, is France's capital."
    assert index.get("paris").metadata == {"v": 2}
    assert [h.id for h in index.search(QUESTION, k=3)].count("paris") == 1
    with pytest.raises(ValueError, match="already in the index"):
        index.add(["again"], ["rome"])  # without upsert an existing id is still an error
    assert Index.open(tmp_path / "ix").get("rome").text == "Rome is the capital of Italy."


def test_update_and_text_errors(tmp_path):
    index = Index.create(tmp_path / "ix", storage="float16")
    ids = index.add(["Paris is the capital of France.", "Bananas are yellow."], metadata=[{"k": 1}, {"k": 2}])
    index.update(ids[1], "Berlin is the capital of Germany.")
    doc = index.get(ids[1])
    assert doc.text == "Berlin is the capital of Germany." and doc.metadata == {"k": 2}
    index.update(ids[1], "Bananas are yellow.", {"k": 3})
    assert index.get(ids[1]).metadata == {"k": 3} and len(index) == 2
    assert Index.open(tmp_path / "ix").search("yellow fruit", k=1)[0].id == ids[1]
    with pytest.raises(KeyError):
        index.update("missing", "text")
    with pytest.raises(ValueError, match="empty"):
        index.update(ids[0], " ")
    with pytest.raises(ValueError, match="empty"):
        index.search("   ")
    with pytest.raises(ValueError, match="limit of 512 tokens"):
        index.search("word " * 600)
    with pytest.raises(ValueError, match="dim"):
        Index.create(tmp_path / "other", dim=8, model=index.encoder)
    with pytest.raises(FileNotFoundError):
        Index.create(tmp_path / "other", model=tmp_path / "no-model-here")
    assert not (tmp_path / "other").exists()


def test_index_search_info(capsys, index_dir):
    code, out, _ = run(capsys, "search", str(index_dir), QUESTION, "-k", "3")
    assert code == 0 and out.splitlines()[0].split()[:3][2] == "capital-france"
    code, out, _ = run(
        capsys, "search", str(index_dir), QUESTION, "--json", "-k", "2", "--filter", "topic=other"
    )
    result = json.loads(out)
    assert [h["rank"] for h in result["hits"]] == [1, 2]
    assert all(h["metadata"]["topic"] == "other" for h in result["hits"])
    code, out, _ = run(capsys, "search", str(index_dir), QUESTION, "--json", "--filter", "n=[0, 1]")
    assert sorted(h["id"] for h in json.loads(out)["hits"]) == ["capital-france", "capital-germany"]
    code, out, _ = run(capsys, "info", str(index_dir))
    assert code == 0 and "documents:      38" in out and "bytes/token:    768" in out  # bfloat16 or float16


def test_plaid_index_search_eval_info(capsys, corpus, tmp_path):
    out_dir = tmp_path / "plaid"
    code, out, _ = run(capsys, "index", str(corpus), "-o", str(out_dir), "--kind", "plaid", "--no-progress")
    assert code == 0 and "plaid 4-bit" in out
    code, out, _ = run(
        capsys, "search", str(out_dir), QUESTION, "-k", "3", "--nprobe", "4", "--ncandidates", "8"
    )
    assert code == 0 and out.splitlines()[0].split()[2] == "capital-france"
    code, out, _ = run(capsys, "search", str(out_dir), QUESTION, "-k", "1", "--exact", "--json")
    assert json.loads(out)["hits"][0]["id"] == "capital-france"
    code, out, _ = run(capsys, "info", str(out_dir))
    assert re.search(r"bytes/token: +19[23]\.\d+\n", out), out  # 4-bit residual (192) + codes (under 2)
    assert "bits per dimension" in out and "no full-precision copy" in out
    code, out, _ = run_eval(
        capsys, out_dir, tmp_path, {"q1": QUESTION}, "q1\tcapital-france\t1\n", "--json", "--nprobe", "1"
    )
    assert code == 0 and json.loads(out)["ndcg@10"] == 1.0 and json.loads(out)["index"]["kind"] == "plaid"
    with pytest.raises(SystemExit, match="apply to --kind plaid"):
        main(
            [
                "index",
                str(corpus),
                "-o",
                str(tmp_path / "x"),
                "--kind",
                "exact",
                "--nbits",
                "2",
                "--no-progress",
            ]
        )


def test_eval_json(capsys, index_dir, tmp_path):
    queries = {"q1": QUESTION, "q2": "tallest mountain"}
    qrels = "q1\tcapital-france\t2\nq2\teverest\t1\n"
    code, out, _ = run_eval(capsys, index_dir, tmp_path, queries, qrels, "--json")
    result = json.loads(out)
    assert code == 0 and result["ndcg@10"] == 1.0 and result["mrr@10"] == 1.0 and result["recall@100"] == 1.0
    assert result["queries"] == 2 and set(result["latency_ms"]) == {"mean", "p50", "p90", "p99"}
    code, out, _ = run_eval(capsys, index_dir, tmp_path, queries, qrels, "--no-progress")
    assert "nDCG@10     1.0000" in out


def test_search_modes(capsys, index_dir):
    code, out, _ = run(capsys, "search", str(index_dir), QUESTION, "-k", "2")
    assert code == 0 and out.splitlines()[0].split()[2] == "capital-france" and "(maxsim " in out
    code, out, _ = run(capsys, "search", str(index_dir), QUESTION, "--json", "--mode", "keyword", "-k", "2")
    hits = json.loads(out)["hits"]
    assert hits[0]["id"] == "capital-france" and hits[0]["semantic_score"] is None
    assert hits[0]["score"] == hits[0]["keyword_score"] > 0
    code, out, _ = run(capsys, "search", str(index_dir), QUESTION, "--json", "--alpha", "1", "-k", "3")
    semantic = run(capsys, "search", str(index_dir), QUESTION, "--json", "--mode", "semantic", "-k", "3")[1]
    assert [h["id"] for h in json.loads(out)["hits"]] == [h["id"] for h in json.loads(semantic)["hits"]]
    code, out, _ = run(capsys, "search", str(index_dir), "the of and", "--mode", "keyword")
    assert code == 0 and out == "no documents match\n"
    code, _, err = run(capsys, "search", str(index_dir), QUESTION, "--mode", "semantic", "--alpha", "0.5")
    assert code == 0  # --alpha only goes to hybrid searches
    code, _, err = run(capsys, "search", str(index_dir), QUESTION, "--alpha", "2")
    assert code == 2 and "alpha" in err


def test_eval_all_modes(capsys, index_dir, tmp_path):
    queries = {"q1": QUESTION, "q2": "tallest mountain"}
    qrels = "q1\tcapital-france\t2\nq2\teverest\t1\n"
    code, out, _ = run_eval(capsys, index_dir, tmp_path, queries, qrels, "--json", "--mode", "all")
    result = json.loads(out)
    assert code == 0 and list(result["modes"]) == ["semantic", "keyword", "hybrid"]
    assert result["modes"]["hybrid"]["ndcg@10"] == 1.0 and result["fusion"] == "minmax fusion, alpha 0.7"
    code, out, _ = run_eval(capsys, index_dir, tmp_path, queries, qrels, "--mode", "all", "--fusion", "rrf")
    assert code == 0 and re.search(r"nDCG@10 +[01]\.\d{4} +[01]\.\d{4} +1\.0000\n", out), out
    assert "hybrid: rrf fusion, alpha 0.5" in out
    code, out, _ = run_eval(capsys, index_dir, tmp_path, queries, qrels, "--no-progress", "--mode", "keyword")
    assert code == 0 and "mode        keyword\n" in out


def test_index_without_keyword_index_then_add_it(capsys, corpus, tmp_path):
    out_dir = tmp_path / "ix"
    assert run(capsys, "index", str(corpus), "-o", str(out_dir), "--no-keyword", "--no-progress")[0] == 0
    code, out, _ = run(capsys, "info", str(out_dir))
    assert "keyword index:  no (semantic search only; add it with: colmax add-keyword-index INDEX)" in out
    code, out, _ = run(capsys, "search", str(out_dir), QUESTION, "--json", "-k", "1")
    assert json.loads(out)["hits"][0]["keyword_score"] is None  # semantic
    code, _, err = run(capsys, "search", str(out_dir), QUESTION, "--mode", "keyword")
    assert code == 2 and "add_keyword_index()" in err
    code, out, _ = run(capsys, "add-keyword-index", str(out_dir))
    assert code == 0 and "added the keyword index of 38 documents" in out
    assert "already has" in run(capsys, "add-keyword-index", str(out_dir))[1]
    assert "keyword index:  yes" in run(capsys, "info", str(out_dir))[1]
    code, out, _ = run(capsys, "search", str(out_dir), QUESTION, "--json", "--mode", "keyword", "-k", "1")
    assert json.loads(out)["hits"][0]["id"] == "capital-france"


def test_cli_errors(capsys, corpus, index_dir, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"_id": "a", "text": "ok"}\n{"_id": "b", "text": oops}\n')
    code, _, err = run(capsys, "index", str(bad), "-o", str(tmp_path / "out"))
    assert code == 2 and "bad.jsonl:2" in err and not (tmp_path / "out").exists()
    code, _, err = run(capsys, "index", str(corpus), "-o", str(index_dir))
    assert code == 2 and "already exists" in err
    code, _, err = run(capsys, "search", str(index_dir), QUESTION, "-k", "0")
    assert code == 2 and "k must be >= 1" in err
    code, _, err = run(capsys, "search", str(tmp_path), QUESTION)
    assert code == 2 and "not a colmax index" in err
    code, _, err = run(capsys, "search", str(index_dir), QUESTION, "--filter", "topic={bad")
    assert code == 0  # not JSON: compared as the text '{bad', matching nothing
    with pytest.raises(SystemExit):
        main(["search", str(index_dir), QUESTION, "--filter", "no-equals-sign"])
    capsys.readouterr()


def test_interrupted_indexing_leaves_nothing(corpus, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Index, "add", interrupted)
    assert main(["index", str(corpus), "-o", str(tmp_path / "out"), "--no-progress"]) == 130
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["index", "add-keyword-index", "search", "eval", "info", "demo"])
def test_help(command):
    exe = shutil.which("colmax")
    argv = [exe] if exe else [sys.executable, "-m", "colmax"]
    result = subprocess.run([*argv, command, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "usage: colmax" in result.stdout


def test_changed_model_is_detected(tmp_path):
    from colmax.index.manifest import read_manifest, write_manifest

    index = Index.create(tmp_path / "ix")
    index.add(["Paris is the capital of France."], ["paris"])
    encoder = index.encoder
    manifest = read_manifest(tmp_path / "ix")
    assert len(manifest.model["onnx_sha256"]) == 64
    write_manifest(tmp_path / "ix", manifest.replace(model=dict(manifest.model, onnx_sha256="0" * 64)))
    with pytest.raises(ValueError, match="differs from the one that built"):
        Index.open(tmp_path / "ix").search(QUESTION)
    assert Index.open(tmp_path / "ix", model=encoder).search(QUESTION)[0].id == "paris"
