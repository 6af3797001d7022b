"""Long documents with the packaged default model: twenty reports of 600 to 3,000 words whose
answers sit in their last quarter (long_documents.py) are found, in every search mode and index
kind, by the passage that holds the answer; cut to their first passage they are not."""

from __future__ import annotations

import warnings

import pytest
from colmax.index import Index, hybrid, search
from colmax.index.query import Plan
from long_documents import FACTS, QUERIES, documents

DOCS = documents()


def test_the_corpus_is_what_it_claims():
    assert len(DOCS) == 20
    for id_, text in DOCS:
        assert 600 <= len(text.split()) <= 3000, id_
        assert text.index(FACTS[id_]) >= 0.75 * len(text), id_  # the answer in the last quarter


@pytest.fixture(scope="module")
def indexes(tmp_path_factory):
    root = tmp_path_factory.mktemp("long")
    texts, ids = [t for _, t in DOCS], [i for i, _ in DOCS]
    exact = Index.create(root / "exact")
    added = exact.add(texts, ids)
    plaid = Index.create(root / "plaid", kind="plaid")
    plaid.add(texts, ids)
    cut = Index.create(root / "truncated")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        truncated = cut.add(texts, ids, truncate=True)
    return exact, plaid, cut, added, truncated, caught


def rank(index: Index, query: str, want: str, **options) -> int:
    ids = [h.id for h in index.search(query, k=20, **options)]
    return ids.index(want) + 1 if want in ids else 99


@pytest.mark.parametrize("mode", ["semantic", "keyword", "hybrid"])
@pytest.mark.parametrize("kind", ["exact", "plaid"])
def test_every_answer_is_in_the_top_3(indexes, mode, kind):
    index = indexes[0] if kind == "exact" else indexes[1]
    ranks = {want: rank(index, query, want, mode=mode) for query, want in QUERIES}
    assert all(r <= 3 for r in ranks.values()), ranks


def test_hits_name_the_passage_that_holds_the_answer(indexes):
    exact = indexes[0]
    for query, want in QUERIES:
        hit = next(h for h in exact.search(query, k=3) if h.id == want)
        assert FACTS[want][:40] in hit.passage_text and hit.text == dict(DOCS)[want]
        ex = exact.explain(query, want)
        assert FACTS[want][:40] in hit.text[ex.span[0] : ex.span[1]]


def test_plaid_hybrid_completes_passages_in_its_staged_search(indexes):
    """Over passages the staged search (doubling its candidates until they span k documents)
    scores the keyword candidates' passages in its last stage, as a second search would."""
    plaid = indexes[1]
    snap = plaid._snapshot
    where = hybrid.scope(snap, None)
    for query, _ in QUERIES[:4]:
        q = plaid.encoder.encode_queries([query])[0]
        for k in (10, 15):  # 15 of the 20 documents: the last stage doubles its candidates
            plan = Plan(nprobe=2, ncandidates=16)
            sides = hybrid.side_scores(snap, query, q, k, where, plan, None, depths=(k, 8))
            assert snap.layout.split and len(set(snap.layout.heads(sides.positions).tolist())) >= k
            want = dict(zip(*search.rerank(snap, q, sides.positions, None, staged=True)))
            assert sides.semantic.tolist() == [float(want[p]) for p in sides.positions.tolist()]


def test_each_document_is_all_its_passages(indexes):
    exact, _, _, added, _, _ = indexes
    assert len(exact) == 20 and added.passages == exact.info()["passages"] > 200 and not added.truncated
    for id_, text in DOCS:
        doc = exact.get(id_)
        assert doc.text == text and len(doc.spans) > 3 and doc.spans[-1][1] == len(text.rstrip())


def test_truncation_loses_the_answers_and_says_so(indexes):
    exact, _, cut, _, truncated, caught = indexes
    assert sorted(truncated.truncated) == sorted(i for i, _ in DOCS) and truncated.passages == 20
    assert [str(w.message).split(" were")[0] for w in caught] == ["20 of 20 documents"]
    first = sum(rank(cut, q, want, mode="semantic") == 1 for q, want in QUERIES)
    # the openings of one kind of report are alike: MaxSim of the first passage guesses among them
    assert first <= 14 and all(rank(exact, q, want, mode="semantic") == 1 for q, want in QUERIES)
