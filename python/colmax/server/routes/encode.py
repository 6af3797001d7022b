"""`POST /encode`: texts to token vectors with a served index's model, for clients that store or
rerank vectors themselves."""

from fastapi import APIRouter, Depends, Request, Response

from ..errors import index_errors
from ..schemas import EncodeRequest, EncodeResponse, ErrorResponse
from ..security import require_key
from ..wire import ragged_to_wire
from .meta import json_response, registry

router = APIRouter(
    tags=["encode"],
    dependencies=[Depends(require_key)],
    responses={code: {"model": ErrorResponse} for code in (401, 404, 413, 422)},
)


@router.post("/encode", response_model=EncodeResponse)
async def encode(body: EncodeRequest, request: Request) -> Response:
    """Queries (`kind: "query"`) or documents (`"document"`) as token matrices: base64
    little-endian float32 rows with offsets, exactly what the index scores."""
    reg = registry(request)
    served = reg.pick(body.index)
    limits = request.app.state.limits
    limits.batch("texts", body.texts)
    if body.kind == "query":
        limits.queries(body.texts)

    def run(index):
        with index_errors():
            encoder = index.encoder
            encode_texts = encoder.encode_queries if body.kind == "query" else encoder.encode_documents
            ragged = encode_texts(body.texts)
        return {"kind": body.kind, "embeddings": ragged_to_wire(ragged)}

    return json_response(await reg.read(served, run))
