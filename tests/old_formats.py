"""Indexes as an older colmax wrote them, made from a current one (for the upgrade tests)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from colmax.index.files import MANIFEST
from colmax.index.manifest import body_checksum


def downgrade_to_format_4(path: Path) -> None:
    """Rewrite an index of single-passage documents as colmax wrote it before passages."""
    body = json.loads((path / MANIFEST).read_text())
    conn = sqlite3.connect(path / body["store"])
    conn.executescript(
        """
        BEGIN;
        CREATE TABLE docs_v1 (pos INTEGER PRIMARY KEY, id TEXT NOT NULL, added INTEGER NOT NULL,
                              deleted INTEGER, meta TEXT, text TEXT);
        INSERT INTO docs_v1 SELECT pos, id, added, deleted, meta, text FROM docs;
        DROP TABLE docs;
        ALTER TABLE docs_v1 RENAME TO docs;
        CREATE INDEX docs_id ON docs(id);
        CREATE UNIQUE INDEX docs_live_id ON docs(id) WHERE deleted IS NULL;
        CREATE INDEX docs_deleted ON docs(deleted) WHERE deleted IS NOT NULL;
        CREATE INDEX docs_added ON docs(added);
        UPDATE colmax SET value = '1' WHERE key = 'version';
        COMMIT;
        """
    )
    conn.close()
    body["format_version"] = 4
    del body["passages"]
    body["checksum"] = body_checksum(body)
    (path / MANIFEST).write_text(json.dumps(body))


def forget_passage_titles(path: Path) -> None:
    """Rewrite an index's settings as colmax recorded them before continued passages carried
    their document's title."""
    body = json.loads((path / MANIFEST).read_text())
    del body["passages"]["titles"]
    body["checksum"] = body_checksum(body)
    (path / MANIFEST).write_text(json.dumps(body))
