"""What colmax picks when not told: kind="auto", the storage precision for this CPU, the warning
of an exact index grown past the threshold, and `colmax index` / `colmax info` on size and memory."""

from __future__ import annotations

import json
import re
import warnings

import colmax
import numpy as np
import pytest
from colmax.cli import main
from colmax.cli.demo import SAMPLE
from colmax.evaluation.corpus import read_jsonl
from colmax.index import Index, defaults

DIM = 16


def docs(n, length=10, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((length, DIM)).astype(np.float32) for _ in range(n)]


def test_default_storage_follows_the_cpu():
    native = {"avx512bf16", "amx"} & set(colmax.supported_isas())
    assert defaults.default_storage() == ("bfloat16" if native else "float16")


def test_resolve_kind():
    limit = defaults.AUTO_PLAID_TOKENS
    assert defaults.resolve_kind("auto", None) == "exact"
    assert defaults.resolve_kind("auto", limit) == "exact"
    assert defaults.resolve_kind("auto", limit + 1) == "plaid"
    assert defaults.resolve_kind("exact", 10 * limit) == "exact"
    assert defaults.resolve_kind("plaid", 1) == "plaid"
    with pytest.raises(ValueError, match="kind must be one of auto, exact, plaid"):
        defaults.resolve_kind("fast", 1)


def test_create_records_the_resolved_kind_and_storage(tmp_path):
    index = Index.create(tmp_path / "a", dim=DIM)
    assert (index.kind, index.storage) == ("exact", defaults.default_storage())
    body = json.loads((tmp_path / "a" / "colmax-index.json").read_text())
    assert (body["kind"], body["storage"]) == ("exact", defaults.default_storage())  # never "auto"
    assert Index.create(tmp_path / "b", dim=DIM, storage="float32").storage == "float32"
    plaid = Index.create(tmp_path / "c", dim=DIM, nbits=4)  # plaid knobs: auto means plaid
    assert (plaid.kind, plaid.storage) == ("plaid", None)
    with pytest.raises(ValueError, match="nbits and n_centroids apply to kind='plaid'"):
        Index.create(tmp_path / "d", dim=DIM, kind="exact", nbits=4)
    with pytest.raises(ValueError, match="kind must be one of"):
        Index.create(tmp_path / "e", dim=DIM, kind="small")


def test_exact_index_warns_once_when_it_grows_past_the_threshold(tmp_path, monkeypatch):
    monkeypatch.setattr(defaults, "AUTO_PLAID_TOKENS", 250)
    index = Index.create(tmp_path / "ix", dim=DIM)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        index.add_embeddings(docs(20), [f"a{i}" for i in range(20)])  # 200 tokens: below
    with pytest.warns(UserWarning, match=r"now holds 400 token vectors.*colmax compress .*ix") as caught:
        index.add_embeddings(docs(20, seed=1), [f"b{i}" for i in range(20)])
    assert len(caught) == 1 and caught[0].filename == __file__  # points at the caller's add
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once: later adds, and plaid indexes, say nothing
        index.add_embeddings(docs(20, seed=2), [f"c{i}" for i in range(20)])
        plaid = Index.create(tmp_path / "px", dim=DIM, kind="plaid")
        plaid.add_embeddings(docs(60), [f"p{i}" for i in range(60)])
    assert index.kind == "exact"  # never converted silently
    assert index.compress().kind == "plaid"


def test_estimate_tokens_counts_what_is_stored(tmp_path):
    corpus = read_jsonl(SAMPLE)
    index = Index.create(tmp_path / "ix")
    index.add(corpus.texts, corpus.ids)
    assert defaults.estimate_tokens(index.encoder, corpus.texts) == index.info()["tokens"]
    sampled = defaults.estimate_tokens(index.encoder, corpus.texts, sample=10)
    assert abs(sampled - index.info()["tokens"]) < 0.25 * index.info()["tokens"]
    assert defaults.estimate_tokens(index.encoder, []) == 0


def test_bytes_per_token_matches_info(tmp_path):
    rng = np.random.default_rng(0)
    matrices = [rng.standard_normal((40, 64)).astype(np.float32) for _ in range(200)]
    for create in ({"kind": "exact", "storage": "float16"}, {"kind": "plaid", "nbits": 2}):
        index = Index.create(tmp_path / create["kind"], dim=64, **create)
        index.add_embeddings(matrices, [str(i) for i in range(200)])
        info = index.info()
        projected = defaults.bytes_per_token(info["kind"], 64, info["storage"], info.get("nbits"))
        assert projected == pytest.approx(info["bytes_per_token"], rel=0.1)


def test_cli_index_projects_picks_and_warns(tmp_path, capsys, monkeypatch):
    assert main(["index", str(SAMPLE), "-o", str(tmp_path / "small"), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert re.search(r"about \d+ token vectors \(auto: up to 400,000\), (bfloat16|float16) at 768 bytes", err)
    assert "warning" not in err
    monkeypatch.setattr(defaults, "AUTO_PLAID_TOKENS", 100)
    monkeypatch.setattr(defaults, "available_memory", lambda: 1000)  # a machine with 1 kB free
    assert main(["index", str(SAMPLE), "-o", str(tmp_path / "big"), "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert "(auto: above 100), plaid 4-bit at 193 bytes each" in err and "plaid 4-bit" in out
    assert "exceeds the memory available" in err and "consider --nbits 2" in err
    assert Index.open(tmp_path / "big").kind == "plaid"
    with pytest.warns(UserWarning, match="colmax compress"):  # an explicit exact index grows past it
        assert (
            main(["index", str(SAMPLE), "-o", str(tmp_path / "x"), "--kind", "exact", "--no-progress"]) == 0
        )
    assert Index.open(tmp_path / "x").kind == "exact"


def test_cli_info_says_whether_it_fits(tmp_path, capsys):
    index = Index.create(tmp_path / "ix", dim=DIM)
    index.add_embeddings(docs(5), list("abcde"))
    assert main(["info", str(tmp_path / "ix")]) == 0
    out = capsys.readouterr().out
    assert re.search(r"bytes/token: +32\n", out)
    assert re.search(r"fits in RAM: +yes \(0\.00 GiB of [\d.]+ GiB available\)", out), out
