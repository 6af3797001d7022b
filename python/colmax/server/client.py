"""``Client``: a colmax server's API with ``Index``'s methods, so code can switch between an
in-process index and a remote one. Standard library (urllib) and NumPy only: no extra needed."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence

import numpy as np

from ..index.errors import IndexLockedError
from ..index.types import Document, Explanation, Hit
from ..ragged import Ragged
from .wire import from_record, matrix_from_wire, ragged_from_wire


def _error(status: int, code: str, message: str) -> Exception:
    """The exception ``Index`` raises for the same mistake, carrying ``status`` and ``code``."""
    if status == 404:
        error: Exception = KeyError(message)
    elif status in (400, 413, 422):
        error = ValueError(message)
    elif status in (401, 403):
        error = PermissionError(message)
    elif status == 409:
        error = IndexLockedError(message)
    else:
        error = RuntimeError(f"the server answered {status} {code}: {message}")
    error.status, error.code = status, code  # type: ignore[attr-defined]
    return error


class Client:
    """A client of ``colmax serve``.

    ``url``: the server, e.g. ``"http://127.0.0.1:8000"``. ``index``: the served index to use;
    None picks the only one (ValueError when the server serves several). ``api_key``: the
    server's key, if it has one. ``timeout``: seconds to wait for each answer (adds of many
    documents take a while: they are encoded before the answer).

    Errors are those ``Index`` raises: KeyError for an unknown id, ValueError for a bad argument
    (also a request over the server's caps), PermissionError for a missing or wrong key,
    IndexLockedError while another process writes; each has ``status`` and ``code`` attributes.
    A server that cannot be reached raises ConnectionError.
    """

    def __init__(
        self, url: str, index: str | None = None, api_key: str | None = None, timeout: float = 60.0
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, got {url!r}")
        if index is not None and not isinstance(index, str):
            raise TypeError(f"index must be a served index's name (a string), got {type(index).__name__}")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._api_key = api_key
        self._index = index

    def __repr__(self) -> str:
        return f"Client({self.url!r}, index={self._index!r})"

    # -- transport ---------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: Mapping | None = None):
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body, ensure_ascii=False, allow_nan=False).encode()
            headers["Content-Type"] = "application/json"
        if self._api_key is not None:
            headers["Authorization"] = f"Bearer {self._api_key}"
        request = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as e:
            with e:
                raw = e.read()
            try:
                error = json.loads(raw)["error"]
                code, message = error["code"], error["message"]
            except (ValueError, KeyError, TypeError):
                code, message = "error", raw.decode(errors="replace")[:500]
            raise _error(e.code, code, message) from None
        except urllib.error.URLError as e:
            raise ConnectionError(f"cannot reach the colmax server at {self.url}: {e.reason}") from None

    @property
    def index(self) -> str:
        """The name of the served index this client uses."""
        if self._index is None:
            names = list(self.indexes())
            if len(names) != 1:
                raise ValueError(
                    f"the server serves {len(names)} indexes ({', '.join(names)}): pass index=NAME"
                )
            self._index = names[0]
        return self._index

    def _path(self, suffix: str = "") -> str:
        return f"/indexes/{urllib.parse.quote(self.index, safe='')}{suffix}"

    # -- the server --------------------------------------------------------------------------

    def health(self) -> dict:
        return self._request("GET", "/health")

    def indexes(self) -> dict:
        """Every served index by name: ``{"documents": n, "generation": g}``."""
        return self._request("GET", "/indexes")

    def info(self) -> dict:
        """The index's facts, as ``Index.info()``."""
        return self._request("GET", self._path())

    def __len__(self) -> int:
        return self.indexes()[self.index]["documents"]

    # -- reading -----------------------------------------------------------------------------

    def search(
        self,
        query: str,
        k: int = 10,
        *,
        filter: Mapping | None = None,
        exact: bool = False,
        nprobe: int | None = None,
        ncandidates: int | None = None,
        mode: str | None = None,
        alpha: float | None = None,
        fusion: str | None = None,
    ) -> list[Hit]:
        """As ``Index.search`` (texts only: for token matrices use an in-process ``Index``):
        ``mode`` "semantic", "keyword" or "hybrid" (None: the served index's default), ``alpha``
        and ``fusion`` for hybrid searches; each hit carries ``semantic_score`` and
        ``keyword_score`` where the search computed them."""
        if not isinstance(query, str):
            raise TypeError(f"query must be a string (the server encodes it), got {type(query).__name__}")
        body = _search_body(k, filter, exact, nprobe, ncandidates, mode, alpha, fusion)
        return [
            _hit(h) for h in self._request("POST", self._path("/search"), {"query": query, **body})["hits"]
        ]

    def search_batch(
        self,
        queries: Sequence[str],
        k: int = 10,
        *,
        filter: Mapping | None = None,
        exact: bool = False,
        nprobe: int | None = None,
        ncandidates: int | None = None,
        mode: str | None = None,
        alpha: float | None = None,
        fusion: str | None = None,
    ) -> list[list[Hit]]:
        """As ``Index.search_batch``: one list of hits per query."""
        if isinstance(queries, str):
            raise TypeError("search_batch takes a list of queries: for one query use search()")
        options = _search_body(k, filter, exact, nprobe, ncandidates, mode, alpha, fusion)
        body = {"queries": list(queries), **options}
        results = self._request("POST", self._path("/search"), body)["results"]
        return [[_hit(h) for h in hits] for hits in results]

    def explain(self, query: str, id: str) -> Explanation:
        """As ``Index.explain``: each query token's best-matching document token."""
        out = self._request("POST", self._path("/explain"), {"query": query, "id": id})
        return from_record(
            Explanation,
            out,
            similarity=lambda v: np.asarray(v, dtype=np.float32),
            doc_token=lambda v: np.asarray(v, dtype=np.int64),
            doc_spans=lambda v: [tuple(s) if s is not None else None for s in v],
            span=tuple,
        )

    def get(self, id: str) -> Document:
        """As ``Index.get``: the stored document with its token vectors."""
        path = self._path(f"/documents/{urllib.parse.quote(_string('id', id), safe='')}?embeddings=true")
        return from_record(
            Document,
            self._request("GET", path),
            embeddings=matrix_from_wire,
            spans=lambda v: [tuple(s) for s in v],
        )

    def encode(self, texts: Sequence[str], kind: str = "query") -> Ragged:
        """Token vectors of ``texts`` by the index's model (``kind``: "query" or "document")."""
        body = {"texts": _listed(texts), "kind": kind, "index": self.index}
        return ragged_from_wire(self._request("POST", "/encode", body)["embeddings"])

    # -- writing -----------------------------------------------------------------------------

    def add(
        self,
        texts: Sequence[str],
        ids: Sequence[str] | None = None,
        metadata: Sequence[Mapping | None] | None = None,
        *,
        upsert: bool = False,
    ) -> list[str]:
        """As ``Index.add``: one commit; returns the ids once it is durable on the server."""
        body: dict = {"texts": _listed(texts)}
        if ids is not None:
            body["ids"] = _listed(ids)
        if metadata is not None:
            body["metadata"] = _listed(metadata)
        if upsert:
            body["upsert"] = True
        return self._request("POST", self._path("/documents"), body)["ids"]

    def delete(self, ids) -> None:
        """As ``Index.delete``: all or none (KeyError naming unknown ids)."""
        self._request(
            "DELETE", self._path("/documents"), {"ids": [ids] if isinstance(ids, str) else _listed(ids)}
        )


def _string(what: str, value) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, got {type(value).__name__}")
    return value


def _listed(value):
    """Sequences as JSON lists; anything else is sent as it is, for the server to refuse."""
    return list(value) if isinstance(value, (list, tuple)) else value


def _search_body(k, filter, exact, nprobe, ncandidates, mode, alpha, fusion) -> dict:
    # only what was set: the server's index keeps its own defaults for the rest
    body = {
        "k": k,
        "filter": filter,
        "nprobe": nprobe,
        "ncandidates": ncandidates,
        "mode": mode,
        "alpha": alpha,
        "fusion": fusion,
    }
    body = {key: value for key, value in body.items() if value is not None}
    if exact:
        body["exact"] = True
    return body


def _hit(data: Mapping) -> Hit:
    return from_record(Hit, data, span=tuple)
