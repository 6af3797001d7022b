"""`GET /health`, `GET /indexes`, `GET /indexes/{name}`: what is served, in which state."""

from fastapi import APIRouter, Depends, Request, Response

from ... import _core
from ..._version import __version__
from ..schemas import HealthResponse, IndexSummary
from ..security import require_key
from ..served import Registry, ServedIndex, dumps

public = APIRouter(tags=["meta"])
router = APIRouter(tags=["meta"], dependencies=[Depends(require_key)])


def registry(request: Request) -> Registry:
    return request.app.state.registry


def json_response(body: bytes) -> Response:
    return Response(body, media_type="application/json")


def summary(served: ServedIndex) -> dict:
    served.refresh()
    index = served.index
    return {"documents": len(index), "generation": index.generation}


@public.get("/health", response_model=HealthResponse)
def health(request: Request) -> Response:
    """Liveness and what is served; the only route that needs no API key."""
    indexes = {name: summary(s) for name, s in registry(request).indexes.items()}
    body = {"status": "ok", "version": __version__, "isa": _core.active_isa(), "indexes": indexes}
    return json_response(dumps(body))


@router.get("/indexes", response_model=dict[str, IndexSummary])
def list_indexes(request: Request) -> Response:
    """Every served index by name: documents and generation (the commit served)."""
    return json_response(dumps({name: summary(s) for name, s in registry(request).indexes.items()}))


@router.get("/indexes/{name}")
async def index_info(name: str, request: Request) -> Response:
    """The facts `colmax info INDEX` prints: kind, model, dim, storage, documents, size..."""
    reg = registry(request)
    return json_response(await reg.read(reg[name], lambda index: {"name": name, **index.info()}))
