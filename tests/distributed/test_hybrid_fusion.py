"""Keyword and hybrid search fused over shards (distributed.hybrid), without Ray: ordinary
indexes stand for the shards and are asked what a shard actor asks them (its share of the BM25
``Index.candidates`` with their term counts, scored under the shards' statistics summed by
``rescore``, and asked again under that sum where a shard's own ranking may fall short); fused by
``fuse_candidates``, the result
is one index's holding every document: ids, order, fused and per-side scores (the order of equal
scores aside: one index breaks ties by insertion order, shards by shard first)."""

from __future__ import annotations

import numpy as np
import pytest
from colmax.distributed.hybrid import contenders, fuse_candidates, rescore
from colmax.distributed.router import shard_of
from colmax.index import Index, fusion, hybrid
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from shard_data import WORDS, assert_same_ranking, random_docs, unit_rows, word_texts

DIM = 12
N_SHARDS = 3
FILTERS = [None, {"g": 1}, {"g": {"in": [0, 3]}}]


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    """One index and three shards, the documents routed by id, with the same history: an add,
    deletes, another add (so BM25 counts the deleted texts on both sides, until compact)."""
    tmp = tmp_path_factory.mktemp("split")
    n = 240
    docs, texts = random_docs(n, DIM, seed=3), word_texts(n, seed=4)
    ids = [f"doc-{i}" for i in range(n)]
    meta = [{"g": i % 4, **({"title": WORDS[i % 7]} if i % 5 == 0 else {})} for i in range(n)]
    whole = Index.create(tmp / "whole", dim=DIM)
    shards = [Index.create(tmp / f"shard{s}", dim=DIM) for s in range(N_SHARDS)]

    def add(batch):
        whole.add_embeddings(
            [docs[i] for i in batch],
            [ids[i] for i in batch],
            [meta[i] for i in batch],
            texts=[texts[i] for i in batch],
        )
        for s, shard in enumerate(shards):
            mine = [i for i in batch if shard_of(ids[i], N_SHARDS) == s]
            shard.add_embeddings(
                [docs[i] for i in mine],
                [ids[i] for i in mine],
                [meta[i] for i in mine],
                texts=[texts[i] for i in mine],
            )

    add(range(160))
    gone = [ids[i] for i in range(0, 160, 9)]
    whole.delete(gone)
    for s, shard in enumerate(shards):
        shard.delete([i for i in gone if shard_of(i, N_SHARDS) == s])
    add(range(160, n))
    yield whole, shards
    for index in (whole, *shards):
        index.close()


def one_index(index: Index, text: str, q: np.ndarray, k: int, how: hybrid.Mode, filter) -> list:
    """``index.search(text, k, ...)`` with ``q`` as the text's query matrix (these indexes have
    no model to encode it), ranked past ``k`` as far as that search's candidates go (so that a
    group of equal scores cut at ``k`` is seen whole), as (id, score, semantic, keyword)."""
    snap = index._snapshot
    where = hybrid.scope(snap, filter, how.name != "keyword")
    hits = hybrid.search(snap, text, lambda: q, k, where, None, how, None)
    if how.name == "keyword":
        deeper = hybrid.search(snap, text, None, k + 60, where, None, how, None)
    else:
        sides = hybrid.side_scores(snap, text, q, k, where, None, None)
        fused = fusion.fuse(how.fusion, sides.semantic, sides.keyword, how.alpha)
        order = np.lexsort((sides.positions, -fused))
        deeper = snap.hits(
            sides.positions[order], fused[order], semantic=sides.semantic[order], keyword=sides.keyword[order]
        )
    assert deeper[:k] == hits
    return [(h.id, h.score, h.semantic_score, h.keyword_score) for h in deeper]


def tie_at_keyword_depth(index: Index, text: str, k: int, filter) -> bool:
    """Whether the hybrid search's keyword candidates end inside a group of equal BM25 scores:
    which of those documents become candidates then follows each side's tie order (one index:
    the earlier added; shards: the lower shard), and through them the fused ranking can differ
    (docs/distributed.md, the stated exceptions)."""
    snap = index._snapshot
    depth = max(k, hybrid.KEYWORD_DEPTH)
    terms = hybrid.keyword.query_terms(text)
    _, scores = hybrid.Lexical(snap, terms, hybrid.scope(snap, filter, False), None).top(depth + 1)
    return scores.size > depth and scores[depth - 1] == scores[depth]


def sharded(shards: list[Index], text: str, q: np.ndarray, k: int, how: hybrid.Mode, filter, asked=None):
    """What ShardedIndex does for one query: every shard's candidates with their counts, BM25
    under the summed statistics, the shards ``rescore`` names asked again under that sum (each
    such shard appended to ``asked``), then fusion."""
    per_shard = {
        s: shard.candidates(text, k, mode=how.name, counts=True, matrix=q, filter=filter)
        for s, shard in enumerate(shards)
    }
    whole, scored, again = rescore(per_shard, how.name, k)
    for s in again:
        scored[s] = shards[s].candidates(text, k, mode=how.name, statistics=whole, matrix=q, filter=filter)
    if asked is not None:
        asked.extend(again)
    return fuse_candidates(scored, k, how)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    words=st.lists(st.sampled_from([*WORDS, "the", "of", "absent"]), min_size=1, max_size=6),
    k=st.integers(1, 120),
    mode=st.sampled_from(["hybrid", "keyword"]),
    alpha=st.sampled_from([None, 0.0, 0.3, 0.8, 1.0]),
    fusion=st.sampled_from([None, "rrf"]),
    which=st.integers(0, len(FILTERS) - 1),
    seed=st.integers(0, 1000),
)
def test_fused_over_shards_equals_one_index(split, words, k, mode, alpha, fusion, which, seed):
    whole, shards = split
    text = " ".join(words)
    if mode == "keyword":
        alpha = fusion = None
    how = hybrid.choose(text, mode, alpha, fusion, lambda: (True, "hybrid"))
    q = unit_rows(np.random.default_rng(seed).standard_normal((4, DIM)))
    if mode == "hybrid" and not hybrid.keyword.query_terms(text):
        return  # searched semantically: ShardedIndex sends it the semantic way
    assume(mode == "keyword" or not tie_at_keyword_depth(whole, text, k, FILTERS[which]))
    deeper = one_index(whole, text, q, k, how, FILTERS[which])
    got = sharded(shards, text, q, k, how, FILTERS[which])
    assert_same_ranking([(r[0], r[2]) for r in got], [(h[0], h[1]) for h in deeper], k)
    sides = {h[0]: h[2:] for h in deeper}
    for id_, _, _, sem, kw in got:
        want_sem, want_kw = sides[id_]
        assert sem == want_sem  # None for keyword searches; else the same float32 MaxSim
        assert kw == pytest.approx(want_kw, rel=1e-12)


def test_a_shard_whose_own_ranking_falls_short_is_asked_again(split):
    """Read twice as deep as the hits need, a shard's own BM25 ranking can miss one of its best
    under the summed statistics (where the bound ``hybrid.enough`` checks does not hold); that
    shard is asked again under the sum, and the ranking is still one index's."""
    whole, shards = split
    how = hybrid.choose("x", "keyword", None, None, lambda: (True, "hybrid"))
    asked: list[int] = []
    for size in range(1, 4):
        for first in range(len(WORDS)):
            text = " ".join(WORDS[first : first + size])
            for k in (1, 3, 10):
                before = len(asked)
                got = sharded(shards, text, None, k, how, None, asked)
                if len(asked) > before:
                    want = one_index(whole, text, None, k, how, None)
                    assert_same_ranking([(r[0], r[2]) for r in got], [(h[0], h[1]) for h in want], k)
    assert asked


def test_shards_own_statistics_would_rank_differently(split):
    """The reason for summed statistics: fused with each shard's own BM25 (as if each were the
    whole), the ranking moves away from the one index's, for some query."""
    whole, shards = split
    how = hybrid.choose("x", "hybrid", None, None, lambda: (True, "hybrid"))
    differs = 0
    for seed in range(12):
        rng = np.random.default_rng(seed)
        text = " ".join(rng.choice(WORDS, size=3))
        q = unit_rows(rng.standard_normal((4, DIM)))
        want = [h[0] for h in one_index(whole, text, q, 10, how, None)][:10]
        own = {s: shard.candidates(text, 10, matrix=q) for s, shard in enumerate(shards)}
        differs += [r[0] for r in fuse_candidates(own, 10, how)] != want
        assert [r[0] for r in sharded(shards, text, q, 10, how, None)] == want
    assert differs


@settings(max_examples=300, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 70), min_size=1, max_size=3),
    k=st.integers(1, 40),
    mode=st.sampled_from(["hybrid", "keyword"]),
    alpha=st.sampled_from([0.05, 0.5, 0.7, 0.95]),
    method=st.sampled_from(["minmax", "rrf"]),
    matched=st.floats(0.0, 1.0),
    seed=st.integers(0, 10_000),
)
def test_contenders_hold_every_final_hit(sizes, k, mode, alpha, method, matched, seed):
    """What each shard sends with its candidates (``contenders``) holds every document of the
    fused top k, whatever the other shards hold: with distinct MaxSim and BM25 scores (BM25 0,
    no query term, shared by any number), a document beaten on both sides by k others is ranked
    below them. Up to 210 candidates: the depths of one index (100 by MaxSim, 30 by BM25) cut."""
    rng = np.random.default_rng(seed)
    total = sum(sizes)
    semantic = rng.permutation(total) + rng.random()
    lexical = np.where(rng.random(total) < matched, rng.permutation(total) + 1.0, 0.0)
    if mode == "keyword":
        semantic = np.full(total, np.nan)
        lexical = np.where(lexical > 0, lexical, rng.permutation(total) + total + 1.0)
    per_shard, sent, start = {}, set(), 0
    for s, n in enumerate(sizes):
        ids = [f"{s}-{i}" for i in range(n)]
        sides = hybrid.Sides(np.arange(n), semantic[start : start + n], lexical[start : start + n])
        per_shard[s] = (ids, sides)
        shard_sent = contenders(ids, sides, k)
        if mode == "keyword":  # beaten by k documents of its shard: not in the shard's own top k
            own_top = np.argsort(-sides.keyword)[:k]
            assert sorted(shard_sent) == sorted(ids[i] for i in own_top)
        sent |= set(shard_sent)
        start += n
    how = hybrid.Mode(mode, alpha if mode == "hybrid" else None, method if mode == "hybrid" else None)
    top = [entry[0] for entry in fuse_candidates(per_shard, k, how)]
    assert set(top) <= sent


def test_contenders_count_documents_not_passages():
    """A document's passages beat a passage of another only once, and never its own."""
    ids = ["a", "a", "b", "c"]
    sides = hybrid.Sides(np.arange(4), np.array([0.9, 0.8, 0.5, 0.1]), np.array([3.0, 2.0, 1.0, 0.0]))
    assert contenders(ids, sides, 1) == ["a"]
    assert contenders(ids, sides, 2) == ["a", "b"]  # c is beaten by a (twice) and by b
    assert contenders(ids, sides, 3) == ["a", "b", "c"]
    assert contenders([], hybrid.Sides(np.arange(0), np.zeros(0), np.zeros(0)), 5) == []
