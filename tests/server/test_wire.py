"""The JSON shapes shared by server and client: results as plain objects, generically (fields a
newer colmax adds pass through), and token matrices as base64 float32 with offsets."""

from __future__ import annotations

import json

import numpy as np
from colmax import Ragged
from colmax.index.types import Explanation, Hit
from colmax.server.wire import (
    from_record,
    matrix_from_wire,
    matrix_to_wire,
    plain,
    ragged_from_wire,
    ragged_to_wire,
)


def test_records_are_plain_json():
    ex = Explanation(
        "d",
        1.5,
        np.array([0.5, 1.0], np.float32),
        np.array([3, 0]),
        ["a", "b"],
        ["x", "y"],
        [(0, 1), None],
        keyword_terms=["capital"],
    )
    out = json.loads(json.dumps(plain(ex)))
    assert out == {
        "id": "d",
        "score": 1.5,
        "similarity": [0.5, 1.0],
        "doc_token": [3, 0],
        "query_tokens": ["a", "b"],
        "doc_tokens": ["x", "y"],
        "doc_spans": [[0, 1], None],
        "keyword_terms": ["capital"],
        "passage": None,
        "span": None,
    }
    hit = Hit("d", 0.75, {"lang": "en"}, "text", semantic_score=7.25, keyword_score=0.0)
    assert json.loads(json.dumps(plain(hit))) == {
        "id": "d",
        "score": 0.75,
        "metadata": {"lang": "en"},
        "text": "text",
        "semantic_score": 7.25,
        "keyword_score": 0.0,
        "passage": None,
        "span": None,
    }
    assert from_record(Hit, plain(hit)) == hit
    # a document split into passages: which one won, and where it is in the text
    long_hit = Hit("d", 0.75, {}, "a long text", semantic_score=0.75, passage=2, span=(2, 6))
    sent = json.loads(json.dumps(plain(long_hit)))
    assert sent["passage"] == 2 and sent["span"] == [2, 6]
    assert from_record(Hit, sent, span=tuple) == long_hit
    assert plain({"terms": {"b", "a"}, "n": np.int64(3), "x": np.float32(0.25)}) == {
        "terms": ["a", "b"],
        "n": 3,
        "x": 0.25,
    }


def test_fields_of_a_newer_server_are_dropped_by_an_older_client():
    sent = {"id": "d", "score": 2.0, "metadata": {}, "text": None, "semantic_score": 1.0, "explanation": {}}
    sent["a_field_of_the_future"] = [1, 2]
    assert from_record(Hit, sent) == Hit("d", 2.0, {}, None, semantic_score=1.0)
    # and those an older server does not send keep their defaults
    assert from_record(Hit, {"id": "d", "score": 2.0}) == Hit("d", 2.0)


def test_matrices_round_trip_exactly():
    rng = np.random.default_rng(0)
    ragged = Ragged.from_list([rng.standard_normal((n, 5)).astype(np.float32) for n in (3, 1, 4)])
    back = ragged_from_wire(json.loads(json.dumps(ragged_to_wire(ragged))))
    np.testing.assert_array_equal(back.tokens, ragged.tokens)
    np.testing.assert_array_equal(back.offsets, ragged.offsets)
    m = ragged.tokens[:3]
    np.testing.assert_array_equal(matrix_from_wire(matrix_to_wire(m)), m)
    # little-endian float32 whatever the machine: 1.0 is 00 00 80 3f
    assert matrix_to_wire(np.ones((1, 1), np.float32))["data"] == "AACAPw=="
