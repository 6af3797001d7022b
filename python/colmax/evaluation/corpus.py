"""Corpus readers for ``colmax index``: JSONL / JSONL.gz, a BEIR dataset directory, a folder of .txt/.md.

JSONL lines are objects with ``_id`` (or ``id``), ``text`` and an optional ``title``; the indexed
text is ``title + " " + text`` (as BEIR evaluations do), every other field becomes metadata (the
fields of a ``metadata`` object are merged in), and the title is kept as metadata too. A line
without an id gets one from its content (``content_id``). Files may start with a UTF-8 byte
order mark. Errors name the file and line; with ``skip_errors`` a malformed line or an
unreadable file is left out and listed in ``Corpus.skipped`` instead.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

TEXT_SUFFIXES = (".txt", ".md")
# hex digits of a content id: 80 bits, so a collision is unlikely below some 10^11 documents
CONTENT_ID_DIGITS = 20


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
    """A text file (gzip-compressed when its name ends in .gz) for reading as UTF-8, a leading
    byte order mark dropped."""
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig")
    return open(path, encoding="utf-8-sig")


def content_id(row: dict) -> str:
    """The id of a JSONL document that has none: the first CONTENT_ID_DIGITS hex digits of the
    SHA-256 of its canonical JSON (keys sorted, no spaces). It depends on the content only, not
    on the file, the line or the run: reading the same document again gives the same id, so
    adding a grown file again adds only its new documents (``colmax add``), and a document
    repeated verbatim is one document."""
    canonical = json.dumps(row, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:CONTENT_ID_DIGITS]


def iter_jsonl(path: Path, expected: str, skipped: list[str] | None = None) -> Iterator[tuple[str, dict]]:
    """``(where, object)`` for each non-blank line of a JSONL file; ``where`` is ``path:line``
    and ``expected`` says what an object must hold, for the error when a line is not one. With a
    ``skipped`` list, such a line is noted there and left out instead."""
    with open_text(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise CorpusError(f"{where}: not valid JSON ({e.msg} at column {e.colno})") from None
                if not isinstance(row, dict):
                    raise CorpusError(f"{where}: expected a JSON object with {expected}")
            except CorpusError as e:
                if skipped is None:
                    raise
                skipped.append(str(e))
                continue
            yield where, row


def _document(row: dict, where: str) -> tuple[str | None, str, dict]:
    """(id or None, indexed text, metadata) of a JSONL object (CorpusError naming the line)."""
    id_ = row.get("_id", row.get("id"))
    if id_ is not None and (isinstance(id_, bool) or not isinstance(id_, (str, int)) or id_ == ""):
        raise CorpusError(f"{where}: '_id' must be a non-empty string or integer, got {id_!r}")
    text, title = row.get("text"), row.get("title") or ""
    if text is None:
        raise CorpusError(f"{where}: missing field 'text'")
    if not isinstance(text, str) or not isinstance(title, str):
        raise CorpusError(f"{where}: 'text' and 'title' must be strings")
    meta = {k: v for k, v in row.items() if k not in ("_id", "id", "text", "title", "metadata")}
    if isinstance(row.get("metadata"), dict):
        meta.update(row["metadata"])
    elif row.get("metadata") is not None:
        meta["metadata"] = row["metadata"]
    if title:
        meta["title"] = title
    return None if id_ is None else str(id_), (title + " " + text).strip(), meta


def read_jsonl(path: str | os.PathLike, *, skip_errors: bool = False) -> Corpus:
    path = Path(path)
    corpus, seen = Corpus(), {}
    problems = corpus.skipped if skip_errors else None
    try:
        for where, row in iter_jsonl(path, "_id and text", problems):
            try:
                id_, full, meta = _document(row, where)
                if not full:
                    corpus.skipped.append(f"{where}: empty title and text (id {id_ or content_id(row)})")
                    continue
                if id_ is None:
                    id_ = content_id(row)
                    if id_ in seen:  # the same document again, verbatim
                        corpus.skipped.append(f"{where}: the same document as {seen[id_]} (id {id_})")
                        continue
                corpus._append(id_, full, meta, where, seen)
            except CorpusError as e:
                if problems is None:
                    raise
                problems.append(str(e))
    except (OSError, EOFError, UnicodeDecodeError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        error = CorpusError(f"{path}: cannot read it ({e})")
        if problems is None:
            raise error from None
        problems.append(f"{error}; the documents before the damage were read")
    return corpus


def read_folder(path: str | os.PathLike, *, skip_errors: bool = False) -> Corpus:
    """Every .txt / .md file below ``path``; the id is the path relative to it."""
    root = Path(path)
    corpus, seen = Corpus(), {}
    for file in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES):
        rel = file.relative_to(root).as_posix()
        try:
            try:
                text = file.read_text(encoding="utf-8-sig").strip()
            except UnicodeDecodeError:
                raise CorpusError(
                    f"{file}: not UTF-8 text: convert it, remove it from the folder, or pass --skip-errors"
                ) from None
            except OSError as e:
                raise CorpusError(
                    f"{file}: cannot read it ({e.strerror or e}): or pass --skip-errors"
                ) from None
        except CorpusError as e:
            if not skip_errors:
                raise
            corpus.skipped.append(str(e))
            continue
        if not text:
            corpus.skipped.append(f"{file}: empty file")
            continue
        corpus._append(rel, text, {"path": rel}, str(file), seen)
    return corpus


def read_corpus(path: str | os.PathLike, *, skip_errors: bool = False) -> Corpus:
    """Read any supported corpus; raise CorpusError if it holds no documents. ``skip_errors``
    leaves out malformed lines and unreadable files (listed in ``Corpus.skipped``)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"corpus {path} does not exist")
    if path.is_dir():
        beir = [path / "corpus.jsonl", path / "corpus.jsonl.gz"]
        found = next((p for p in beir if p.is_file()), None)
        if found:
            corpus = read_jsonl(found, skip_errors=skip_errors)
        else:
            corpus = read_folder(path, skip_errors=skip_errors)
        kind = "JSONL documents" if found else f"{' or '.join(TEXT_SUFFIXES)} files"
    elif path.name.endswith((".jsonl", ".jsonl.gz", ".json.gz", ".ndjson")):
        corpus, kind = read_jsonl(path, skip_errors=skip_errors), "JSONL documents"
    else:
        raise CorpusError(
            f"{path}: unsupported corpus; pass a .jsonl / .jsonl.gz file, a BEIR dataset directory "
            "(with corpus.jsonl) or a folder of .txt / .md files"
        )
    if not len(corpus):
        raise CorpusError(f"{path}: the corpus is empty (no {kind} with text)")
    return corpus
