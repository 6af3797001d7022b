"""colmax.corpus: JSONL / JSONL.gz / BEIR directory / text folder readers and their errors."""

from __future__ import annotations

import gzip
import json

import pytest
from colmax.evaluation.corpus import CorpusError, read_corpus, read_folder, read_jsonl


def write_jsonl(path, rows):
    path.write_text(
        "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8"
    )
    return path


def test_jsonl_fields_and_metadata(tmp_path):
    path = write_jsonl(
        tmp_path / "c.jsonl",
        [
            {"_id": "a", "title": "Title A", "text": "Body a.", "lang": "en", "metadata": {"year": 2020}},
            "",
            {"id": 7, "text": "Body b."},
        ],
    )
    corpus = read_jsonl(path)
    assert corpus.ids == ["a", "7"]
    assert corpus.texts == ["Title A Body a.", "Body b."]
    assert corpus.metadata == [{"lang": "en", "year": 2020, "title": "Title A"}, {}]


def test_gzip_and_beir_directory(tmp_path):
    rows = [{"_id": "x", "text": "gzipped"}]
    with gzip.open(tmp_path / "corpus.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write(json.dumps(rows[0]) + "\n")
    assert read_corpus(tmp_path / "corpus.jsonl.gz").ids == ["x"]
    assert read_corpus(tmp_path).texts == ["gzipped"]  # a BEIR directory


def test_folder_of_text_files(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.txt").write_text("second", encoding="utf-8")
    (tmp_path / "sub" / "a.md").write_text("# Heading\nfirst", encoding="utf-8")
    (tmp_path / "empty.txt").write_text("  ", encoding="utf-8")
    (tmp_path / "ignored.pdf").write_bytes(b"%PDF")
    corpus = read_folder(tmp_path)
    assert corpus.ids == ["b.txt", "sub/a.md"]
    assert corpus.metadata[1] == {"path": "sub/a.md"}
    assert len(corpus.skipped) == 1 and "empty" in corpus.skipped[0]
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(CorpusError, match="UTF-8"):
        read_folder(tmp_path)


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"_id": "b", "text": "unterminated', "line 2|:2: not valid JSON"),
        ('["a list"]', ":2: expected a JSON object"),
        ('{"text": "no id"}', ":2: missing field '_id'"),
        ('{"_id": "b"}', ":2: missing field 'text'"),
        ('{"_id": "b", "text": 3}', ":2: 'text' and 'title' must be strings"),
        ('{"_id": {"x": 1}, "text": "t"}', ":2: '_id' must be"),
        ('{"_id": "a", "text": "dup"}', ":2: duplicate id 'a'"),
    ],
)
def test_malformed_lines_name_the_line(tmp_path, line, message):
    path = write_jsonl(tmp_path / "c.jsonl", [{"_id": "a", "text": "fine"}, line])
    with pytest.raises(CorpusError, match=message):
        read_jsonl(path)


def test_empty_and_unsupported(tmp_path):
    write_jsonl(tmp_path / "empty.jsonl", [{"_id": "a", "text": ""}])
    with pytest.raises(CorpusError, match="empty"):
        read_corpus(tmp_path / "empty.jsonl")
    (tmp_path / "folder").mkdir()
    with pytest.raises(CorpusError, match="empty"):
        read_corpus(tmp_path / "folder")
    (tmp_path / "data.csv").write_text("a,b")
    with pytest.raises(CorpusError, match="unsupported"):
        read_corpus(tmp_path / "data.csv")
    with pytest.raises(FileNotFoundError):
        read_corpus(tmp_path / "missing.jsonl")
    (tmp_path / "broken.jsonl.gz").write_bytes(b"not gzip at all")
    with pytest.raises(CorpusError, match="cannot read"):
        read_corpus(tmp_path / "broken.jsonl.gz")
