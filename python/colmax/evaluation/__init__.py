"""Evaluating an index on BEIR-format data: corpus, queries and qrels readers, metrics, the run."""

from .corpus import Corpus, CorpusError, read_corpus
from .judgments import read_qrels, read_queries
from .metrics import mrr, ndcg, recall, score_run
from .run import evaluate

__all__ = [
    "Corpus",
    "CorpusError",
    "evaluate",
    "mrr",
    "ndcg",
    "read_corpus",
    "read_qrels",
    "read_queries",
    "recall",
    "score_run",
]
