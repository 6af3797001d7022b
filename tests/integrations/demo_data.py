"""What the integration tests share: colmax's demo passages with metadata to filter on, and
queries."""

from __future__ import annotations

import json
from pathlib import Path

import colmax

DEMO = Path(colmax.__file__).parent / "data" / "demo_corpus.jsonl"
QUERIES = [
    "What is the capital of France?",
    "Which river flows through Paris?",
    "How many keys does a piano have?",
    "largest planet",
]


def demo_corpus() -> tuple[list[str], list[str], list[dict]]:
    rows = [json.loads(line) for line in DEMO.read_text(encoding="utf-8").splitlines()]
    ids = [r["_id"] for r in rows]
    texts = [r["text"] for r in rows]
    # "group": the id's first word; "score" collides on purpose with the field the LangChain
    # retriever adds; "i" is a number to filter on
    metadata = [
        {"group": d.split("-")[0], "i": i, **({"score": "five stars"} if d == "seine" else {})}
        for i, d in enumerate(ids)
    ]
    return ids, texts, metadata
