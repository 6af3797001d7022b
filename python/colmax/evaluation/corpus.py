"""Corpus readers for ``colmax index``: JSONL / JSONL.gz, a BEIR dataset directory, a folder of .txt/.md.

JSONL lines are objects with ``_id`` (or ``id``), ``text`` and an optional ``title``; the indexed
text is ``title + " " + text`` (as BEIR evaluations do), every other field becomes metadata (the
fields of a ``metadata`` object are merged in), and the title is kept as metadata too. Errors
name the file and line.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

TEXT_SUFFIXES = (".txt", ".md")


class CorpusError(ValueError):
    """A corpus file cannot be read: the message names the file, the line and the fix."""


@dataclass
class Corpus:
    ids: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    metadata: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # what was left out, and why

    def __len__(self) -> int:
        return len(self.ids)

    def _append(self, id_: str, text: str, meta: dict, where: str, seen: dict[str, str]) -> None:
        if id_ in seen:
            raise CorpusError(
                f"{where}: duplicate id {id_!r} (first seen at {seen[id_]}): ids must be unique"
            )
        seen[id_] = where
        self.ids.append(id_)
        self.texts.append(text)
        self.metadata.append(meta)


def open_text(path: Path):
    """A text file (gzip-compressed when its name ends in .gz) for reading as UTF-8."""
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def iter_jsonl(path: Path, expected: str) -> Iterator[tuple[str, dict]]:
    """``(where, object)`` for each non-blank line of a JSONL file; ``where`` is ``path:line``
    and ``expected`` says what an object must hold, for the error when a line is not one."""
    with open_text(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise CorpusError(f"{where}: not valid JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(row, dict):
                raise CorpusError(f"{where}: expected a JSON object with {expected}")
            yield where, row


def read_jsonl(path: str | os.PathLike) -> Corpus:
    path = Path(path)
    corpus, seen = Corpus(), {}
    try:
        for where, row in iter_jsonl(path, "_id and text"):
            id_ = row.get("_id", row.get("id"))
            if id_ is None:
                raise CorpusError(f"{where}: missing field '_id' (the document id)")
            if isinstance(id_, bool) or not isinstance(id_, (str, int)) or id_ == "":
                raise CorpusError(f"{where}: '_id' must be a non-empty string or integer, got {id_!r}")
            text, title = row.get("text"), row.get("title") or ""
            if text is None:
                raise CorpusError(f"{where}: missing field 'text'")
            if not isinstance(text, str) or not isinstance(title, str):
                raise CorpusError(f"{where}: 'text' and 'title' must be strings")
            full = (title + " " + text).strip()
            if not full:
                corpus.skipped.append(f"{where}: empty title and text (id {id_})")
                continue
            meta = {k: v for k, v in row.items() if k not in ("_id", "id", "text", "title", "metadata")}
            if isinstance(row.get("metadata"), dict):
                meta.update(row["metadata"])
            elif row.get("metadata") is not None:
                meta["metadata"] = row["metadata"]
            if title:
                meta["title"] = title
            corpus._append(str(id_), full, meta, where, seen)
    except (OSError, EOFError, UnicodeDecodeError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise CorpusError(f"{path}: cannot read it ({e})") from None
    return corpus


def read_folder(path: str | os.PathLike) -> Corpus:
    """Every .txt / .md file below ``path``; the id is the path relative to it."""
    root = Path(path)
    corpus, seen = Corpus(), {}
    for file in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES):
        rel = file.relative_to(root).as_posix()
        try:
            text = file.read_text(encoding="utf-8").strip()
        except UnicodeDecodeError:
            raise CorpusError(f"{file}: not UTF-8 text: convert it or remove it from the folder") from None
        if not text:
            corpus.skipped.append(f"{file}: empty file")
            continue
        corpus._append(rel, text, {"path": rel}, str(file), seen)
    return corpus


def read_corpus(path: str | os.PathLike) -> Corpus:
    """Read any supported corpus; raise CorpusError if it holds no documents."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"corpus {path} does not exist")
    if path.is_dir():
        beir = [path / "corpus.jsonl", path / "corpus.jsonl.gz"]
        found = next((p for p in beir if p.is_file()), None)
        corpus = read_jsonl(found) if found else read_folder(path)
        kind = "JSONL documents" if found else f"{' or '.join(TEXT_SUFFIXES)} files"
    elif path.name.endswith((".jsonl", ".jsonl.gz", ".json.gz", ".ndjson")):
        corpus, kind = read_jsonl(path), "JSONL documents"
    else:
        raise CorpusError(
            f"{path}: unsupported corpus; pass a .jsonl / .jsonl.gz file, a BEIR dataset directory "
            "(with corpus.jsonl) or a folder of .txt / .md files"
        )
    if not len(corpus):
        raise CorpusError(f"{path}: the corpus is empty (no {kind} with text)")
    return corpus
