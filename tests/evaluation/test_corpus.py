"""colmax.corpus: JSONL / JSONL.gz / BEIR directory / text folder readers and their errors."""

from __future__ import annotations

import gzip
import json

import pytest
from colmax.evaluation.corpus import CorpusError, content_id, read_corpus, read_folder, read_jsonl


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


def test_lines_without_an_id_get_one_from_their_content(tmp_path):
    rows = [{"text": "first", "lang": "en"}, {"_id": "x", "text": "named"}, {"lang": "en", "text": "first"}]
    corpus = read_jsonl(write_jsonl(tmp_path / "c.jsonl", rows))
    # the same object (whatever its key order) is the same document: the repeat is left out, noted
    assert corpus.ids == [content_id(rows[0]), "x"] and len(corpus.ids[0]) == 20
    assert len(corpus.skipped) == 1 and ":3: the same document as" in corpus.skipped[0]
    # the id depends on the content only: another file, another line, another run
    moved = write_jsonl(tmp_path / "other.jsonl", [{"text": "new"}, json.dumps(rows[0], indent=None)])
    assert read_jsonl(moved).ids[1] == corpus.ids[0]
    assert content_id({"text": "first", "lang": "de"}) != corpus.ids[0]


def test_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"_id": "a", "text": "with a BOM"}).encode() + b"\n")
    assert read_jsonl(path).ids == ["a"]
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "a.txt").write_bytes(b"\xef\xbb\xbfplain text")
    assert read_folder(tmp_path / "folder").texts == ["plain text"]
    with gzip.open(tmp_path / "bom.jsonl.gz", "wb") as f:
        f.write(path.read_bytes())
    assert read_corpus(tmp_path / "bom.jsonl.gz").ids == ["a"]


def test_skip_errors_leaves_out_and_reports(tmp_path):
    path = write_jsonl(
        tmp_path / "c.jsonl",
        [
            {"_id": "a", "text": "fine"},
            "{not json",
            ["a list"],
            {"_id": "b"},
            {"_id": "a", "text": "dup"},
            {"_id": "c", "text": "ok"},
        ],
    )
    with pytest.raises(CorpusError, match=":2: not valid JSON"):
        read_jsonl(path)
    corpus = read_jsonl(path, skip_errors=True)
    assert corpus.ids == ["a", "c"]
    assert [note.split(": ", 1)[0].rsplit(":", 1)[1] for note in corpus.skipped] == ["2", "3", "4", "5"]
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "good.md").write_text("good", encoding="utf-8")
    (folder / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"not UTF-8.*--skip-errors"):
        read_corpus(folder)
    corpus = read_corpus(folder, skip_errors=True)
    assert corpus.ids == ["good.md"] and "latin1.txt: not UTF-8" in corpus.skipped[0]
