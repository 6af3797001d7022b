"""`POST`/`DELETE /indexes/{name}/documents` and `GET /indexes/{name}/documents/{id}`: writes
(serialized per index, on its writer thread) and reading one stored document."""

from fastapi import APIRouter, Depends, Request, Response

from ..errors import index_errors
from ..schemas import AddRequest, AddResponse, DeleteRequest, DeleteResponse, DocumentOut, ErrorResponse
from ..security import require_key
from ..wire import matrix_to_wire, record
from .meta import json_response, registry

router = APIRouter(
    tags=["documents"],
    dependencies=[Depends(require_key)],
    responses={code: {"model": ErrorResponse} for code in (401, 404, 409, 413, 422, 503)},
)


@router.post("/indexes/{name}/documents", response_model=AddResponse)
async def add(name: str, body: AddRequest, request: Request) -> Response:
    """Encode and add documents in one commit; with `upsert`, replace those whose id exists.
    The answer comes once the commit is durable."""
    reg = registry(request)
    served = reg[name]
    request.app.state.limits.batch("texts", body.texts, request.app.state.limits.max_documents)
    upsert = {"upsert": True} if body.upsert else {}

    def run(index):
        with index_errors():
            ids = index.add(body.texts, body.ids, body.metadata, **upsert)
        return {"ids": ids, "generation": index.generation}

    return json_response(await reg.write(served, run))


@router.delete("/indexes/{name}/documents", response_model=DeleteResponse)
async def delete(name: str, body: DeleteRequest, request: Request) -> Response:
    """Delete documents by id, all or none (404 naming the unknown ones)."""
    reg = registry(request)
    served = reg[name]
    request.app.state.limits.batch("ids", body.ids, request.app.state.limits.max_documents)

    def run(index):
        with index_errors():
            index.delete(body.ids)
        return {"deleted": len(set(body.ids)), "generation": index.generation}

    return json_response(await reg.write(served, run))


@router.get("/indexes/{name}/documents/{id:path}", response_model=DocumentOut)
async def get(name: str, id: str, request: Request, embeddings: bool = False) -> Response:
    """One stored document: id, text, metadata, and with `?embeddings=true` its token vectors."""
    reg = registry(request)

    def run(index):
        with index_errors():
            document = index.get(id)
        out = record(document, skip=("embeddings",))
        if embeddings:
            out["embeddings"] = matrix_to_wire(document.embeddings)
        return out

    return json_response(await reg.read(reg[name], run))
