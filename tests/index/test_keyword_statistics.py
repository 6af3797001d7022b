"""BM25 under explicit statistics (keyword.Statistics, keyword.bm25): FTS5's own scores bit for
bit under a store's own statistics, and, with the statistics of several stores summed, the
scores and the top documents of one store holding all of their rows."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from colmax.index import Index, hybrid, keyword
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

DIM = 8
# words the porter stemmer folds together (run, runs, running) beside words it leaves alone
VOCAB = ["run", "runs", "running", "cat", "cats", "t1", "t2", "t3", "t4", "t5", "t6", "zeta", "omega"]


def corpus(n: int, seed: int, rare: str | None = None):
    """Texts of Zipf-distributed words, lengths 1-80 (some past 127 tokens with the title, so
    sizes take two-byte varints), some with a title; ``rare`` in about a tenth of them."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, len(VOCAB) + 1)
    weights /= weights.sum()
    texts, meta = [], []
    for i in range(n):
        words = list(rng.choice(VOCAB, size=int(rng.integers(1, 81)), p=weights))
        if rare is not None and rng.random() < 0.1:
            words.append(rare)
        if i % 17 == 0:
            words += ["padding"] * 90
        texts.append(" ".join(words))
        meta.append({"g": i % 3, **({"title": str(rng.choice(VOCAB))} if i % 4 == 0 else {})})
    return texts, meta


def vectors(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((int(rng.integers(1, 6)), DIM)).astype(np.float32) for _ in range(n)]


def fts5_scores(conn: sqlite3.Connection, terms: list[str]) -> dict[int, float]:
    expression = keyword.match_expression(terms)
    return dict(
        conn.execute("SELECT rowid, -bm25(keyword) FROM keyword WHERE keyword MATCH ?", (expression,))
    )


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """One index holding 300 documents, and three 'shards' holding them split by i % 3 (the
    history of each: an add, deletes, an add), the deleted ones removed from both alike."""
    tmp = tmp_path_factory.mktemp("stats")
    texts, meta = corpus(300, seed=1, rare="quasar")
    docs = vectors(300, seed=2)
    ids = [f"d{i}" for i in range(300)]
    whole = Index.create(tmp / "whole", dim=DIM)
    parts = [Index.create(tmp / f"part{s}", dim=DIM) for s in range(3)]
    gone = [ids[i] for i in range(0, 300, 11)]
    for first, last in ((0, 200), (200, 300)):
        batch = range(first, last)
        whole.add_embeddings(
            [docs[i] for i in batch],
            [ids[i] for i in batch],
            [meta[i] for i in batch],
            texts=[texts[i] for i in batch],
        )
        for s, part in enumerate(parts):
            mine = [i for i in batch if i % 3 == s]
            part.add_embeddings(
                [docs[i] for i in mine],
                [ids[i] for i in mine],
                [meta[i] for i in mine],
                texts=[texts[i] for i in mine],
            )
        if first == 0:
            whole.delete([i for i in gone if int(i[1:]) < 200])
            for s, part in enumerate(parts):
                part.delete([i for i in gone if int(i[1:]) < 200 and int(i[1:]) % 3 == s])
    yield whole, parts
    for index in (whole, *parts):
        index.close()


QUERIES = ["running cats", "t5 zeta omega", "quasar run", "t1 t2 t3 t4 t5 t6", "cat", "omega quasar t6"]


@pytest.mark.parametrize("query", QUERIES)
def test_bm25_under_a_stores_own_statistics_is_fts5s_bit_for_bit(stores, query):
    whole, _ = stores
    conn = whole._snapshot.store.conn
    terms = keyword.query_terms(query)
    want = fts5_scores(conn, terms)
    positions = np.array(sorted(want), dtype=np.int64)
    stats = keyword.statistics(conn, terms)
    got = keyword.bm25(*keyword.frequencies(conn, terms, positions, stats), stats)
    assert got.tolist() == [want[p] for p in positions.tolist()]  # the same operations, the same rounding
    assert stats == whole.keyword_statistics(query)
    # tombstoned rows count until compact, as in FTS5: 300 texts indexed, 19 of them deleted
    assert stats.rows == 300 and len(whole) == 300 - 19


def test_statistics_of_parts_sum_to_the_whole(stores):
    whole, parts = stores
    for query in QUERIES:
        total = parts[0].keyword_statistics(query) + parts[1].keyword_statistics(query)
        total = total + parts[2].keyword_statistics(query)
        assert total == whole.keyword_statistics(query)
    with pytest.raises(ValueError, match="different queries"):
        _ = parts[0].keyword_statistics("cat") + parts[0].keyword_statistics("cat run")


def test_varints_decode_as_fts5_wrote_them():
    assert keyword._varints(bytes([0x05, 0x81, 0x00, 0x7F])) == [5, 128, 127]
    assert keyword._varints(bytes([0xFF] * 8 + [0x01])) == [(2**56 - 1) << 8 | 1]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    query=st.lists(st.sampled_from([*VOCAB, "quasar", "padding", "absent"]), min_size=1, max_size=6),
    k=st.integers(1, 60),
    filtered=st.booleans(),
)
def test_parts_rank_under_summed_statistics_as_the_whole_does(stores, query, k, filtered):
    """Each part's best k under the summed statistics, merged, are the whole's best k with the
    whole's scores, though a part's own ranking differs (its statistics are not the whole's)."""
    whole, parts = stores
    text = " ".join(query)
    where = {"g": {"in": [0, 2]}} if filtered else None
    stats = sum((p.keyword_statistics(text) for p in parts[1:]), parts[0].keyword_statistics(text))
    want = [(h.id, h.score) for h in whole.search(text, k, mode="keyword", filter=where)]
    found = []
    for part in parts:
        ids, sides = part.candidates(text, k, mode="keyword", statistics=stats, filter=where)
        assert np.isnan(sides.semantic).all()
        found += zip(ids, sides.keyword.tolist())
    found.sort(key=lambda pair: (-pair[1], int(pair[0][1:])))
    assert [i for i, _ in found[:k]] == [i for i, _ in want]
    np.testing.assert_allclose([s for _, s in found[:k]], [s for _, s in want], rtol=1e-12)


def test_a_part_reads_its_own_ranking_deeper_until_the_bound_holds(stores, monkeypatch):
    """'run' is in every text, so each part floors its IDF at 1e-6 as the whole does, while
    'padding' and 'quasar' weigh differently in a part than in the whole: a part's own top 2 is
    read twice as deep, then deeper where the bound (keyword.ceiling) leaves a document below the
    read ones that could still rank, and the merged answer is still the whole's."""
    whole, parts = stores
    depths: list[list[int]] = []
    original = hybrid._keyword_passages  # a part's own BM25 ranking, read n deep

    def spy(snap, expression, n, where):
        depths[-1].append(n)
        return original(snap, expression, n, where)

    monkeypatch.setattr(hybrid, "_keyword_passages", spy)
    text = "padding quasar run"
    stats = sum((p.keyword_statistics(text) for p in parts[1:]), parts[0].keyword_statistics(text))
    found = []
    for part in parts:
        assert part.keyword_statistics(text) != stats
        assert keyword.ceiling(part.keyword_statistics(text), stats, 1.0) > 1.0
        depths.append([])
        ids, sides = part.candidates(text, 2, mode="keyword", statistics=stats)
        found += zip(sides.keyword.tolist(), ids)
    assert all(d[0] == 4 for d in depths) and max(len(d) for d in depths) > 1
    want = [(h.score, h.id) for h in whole.search(text, 2, mode="keyword")]
    assert sorted(found, reverse=True)[:2] == want


def test_hybrid_candidates_carry_bm25_under_the_statistics(stores):
    whole, parts = stores
    text = "running cats quasar"
    q = np.random.default_rng(3).standard_normal((3, DIM)).astype(np.float32)
    stats = sum((p.keyword_statistics(text) for p in parts[1:]), parts[0].keyword_statistics(text))
    conn = whole._snapshot.store.conn
    want = fts5_scores(conn, keyword.query_terms(text))
    by_id = {}
    for part in parts:
        ids, sides = part.candidates(text, 5, matrix=q, statistics=stats)
        assert list(sides.positions) == sorted(sides.positions)
        by_id.update(zip(ids, sides.keyword.tolist()))
    positions = whole._snapshot.store.positions_of(whole.ids(), whole.generation)
    for id_, score in by_id.items():
        assert score == pytest.approx(want.get(positions[id_], 0.0), rel=1e-12)
    with pytest.raises(ValueError, match="mode must be one of"):
        parts[0].candidates(text, 5, mode="fuzzy", matrix=q)
    with pytest.raises(ValueError, match="not for this semantic search"):
        parts[0].candidates(text, 5, mode="semantic", matrix=q)
    with pytest.raises(ValueError, match="give no statistics"):
        parts[0].candidates(text, 5, matrix=q, statistics=stats, counts=True)


@pytest.mark.parametrize("mode", ["hybrid", "keyword"])
def test_counted_candidates_score_under_summed_statistics_as_the_whole_does(stores, mode):
    """``counts=True``: each candidate's term counts and length, and the part's own statistics,
    from which BM25 under the parts' summed statistics is FTS5's score in the whole store; the
    keyword candidates are the part's own ranking read twice as deep (``read``)."""
    whole, parts = stores
    text = "running cats quasar padding"
    q = np.random.default_rng(4).standard_normal((3, DIM)).astype(np.float32)
    counted = [part.candidates(text, 5, mode=mode, matrix=q, counts=True) for part in parts]
    stats = counted[0][1].counts.local + counted[1][1].counts.local + counted[2][1].counts.local
    assert stats == sum((p.keyword_statistics(text) for p in parts[1:]), parts[0].keyword_statistics(text))
    want = fts5_scores(whole._snapshot.store.conn, keyword.query_terms(text))
    positions = whole._snapshot.store.positions_of(whole.ids(), whole.generation)
    depth = hybrid.keyword_depth(mode, 5)
    for part, (ids, sides) in zip(parts, counted):
        counts = sides.counts
        assert counts.asked == hybrid.READ_AHEAD * depth
        assert counts.read.sum() == min(counts.asked, counts.read.size)
        own = fts5_scores(part._snapshot.store.conn, keyword.query_terms(text))
        np.testing.assert_array_equal(sides.keyword, [own.get(p, 0.0) for p in sides.positions.tolist()])
        scores = keyword.bm25(counts.frequencies, counts.lengths, stats)
        for id_, score in zip(ids, scores.tolist()):
            assert score == pytest.approx(want.get(positions[id_], 0.0), rel=1e-12)
        read = np.flatnonzero(counts.read)
        assert counts.floor == min(own[p] for p in sides.positions[read].tolist())
    ids, sides = parts[0].candidates("the of", 5, mode="keyword", counts=True)  # stopwords: no terms
    assert ids == [] and sides.counts.frequencies.shape == (0, 0) and not sides.counts.local.holding


@settings(max_examples=300, deadline=None)
@given(
    rows=st.integers(1, 5000),
    others=st.integers(0, 5000),
    holding=st.lists(st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0)), min_size=1, max_size=6),
    tokens=st.tuples(st.floats(1.0, 300.0), st.floats(1.0, 300.0)),
    frequencies=st.lists(st.integers(0, 40), min_size=6, max_size=6),
    length=st.integers(1, 2000),
)
def test_the_ceiling_bounds_a_passage_under_summed_statistics(
    rows, others, holding, tokens, frequencies, length
):
    """``keyword.ceiling``: a passage scoring s under a store's own statistics scores at most
    ceiling(s) under statistics that add any other store's (some of its terms common in one
    store, rare in the other; either store with the longer texts)."""
    local = keyword.Statistics(
        rows, round(rows * tokens[0]), tuple(max(1, round(a * rows)) for a, _ in holding)
    )
    other = keyword.Statistics(
        others, round(others * tokens[1]), tuple(round(b * others) for _, b in holding)
    )
    whole = local + other
    f = np.array([frequencies[: len(holding)]], dtype=np.float64)
    size = np.array([max(length, int(f.sum()))], dtype=np.float64)
    own = keyword.bm25(f, size, local)[0]
    assert keyword.bm25(f, size, whole)[0] <= keyword.ceiling(local, whole, own) * (1 + 1e-9)
