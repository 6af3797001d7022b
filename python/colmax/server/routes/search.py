"""`POST /indexes/{name}/search` and `POST /indexes/{name}/explain`: the same results as
``Index.search`` / ``search_batch`` / ``explain`` in-process, as JSON."""

from fastapi import APIRouter, Depends, Request, Response

from ..errors import ApiError, index_errors
from ..schemas import ErrorResponse, ExplainRequest, ExplainResponse, SearchRequest, SearchResponse
from ..security import require_key
from ..wire import record
from .meta import json_response, registry

router = APIRouter(
    tags=["search"],
    dependencies=[Depends(require_key)],
    responses={code: {"model": ErrorResponse} for code in (401, 404, 413, 422)},
)

# request fields passed to Index.search when the client set them (to anything but null): unset
# ones keep the index's defaults
OPTIONS = ("filter", "mode", "alpha", "fusion", "exact", "nprobe", "ncandidates")


def options(body: SearchRequest) -> dict:
    return {name: getattr(body, name) for name in OPTIONS if getattr(body, name) is not None}


@router.post("/indexes/{name}/search", response_model=SearchResponse)
async def search(name: str, body: SearchRequest, request: Request) -> Response:
    """Search with `query` (answer: `hits`) or `queries` (answer: `results`, one list each)."""
    reg = registry(request)
    served = reg[name]
    limits = request.app.state.limits
    if (body.query is None) == (body.queries is None):
        raise ApiError(422, "invalid_request", "send exactly one of `query` (a text) and `queries` (a list)")
    if body.explain and body.query is None:
        raise ApiError(422, "invalid_request", "`explain` goes with `query`: explain one query at a time")
    if body.queries == []:
        raise ApiError(422, "invalid_argument", "queries is empty: pass at least one query")
    limits.k(body.k)
    queries = [body.query] if body.query is not None else body.queries
    limits.batch("queries", queries)
    limits.queries(queries)
    opts = options(body)

    def run(index):
        generation = index.generation  # the commit the search reads (the index reads it at the start)
        with index_errors():
            if body.query is None:
                batches = index.search_batch(body.queries, body.k, **opts)
            else:
                hits = index.search(body.query, body.k, **opts)
                explanations = [index.explain(body.query, h.id) for h in hits] if body.explain else []
        if body.query is None:
            return {"results": [[record(h) for h in hits] for hits in batches], "generation": generation}
        out = [record(h) for h in hits]
        for hit, explanation in zip(out, explanations):
            hit["explanation"] = record(explanation)
        return {"hits": out, "generation": generation}

    return json_response(await reg.read(served, run))


@router.post("/indexes/{name}/explain", response_model=ExplainResponse)
async def explain(name: str, body: ExplainRequest, request: Request) -> Response:
    """Per query token: the best-matching document token, its text, place and similarity."""
    reg = registry(request)
    served = reg[name]
    request.app.state.limits.queries([body.query])

    def run(index):
        with index_errors():
            explanation = index.explain(body.query, body.id)
        return record(explanation)

    return json_response(await reg.read(served, run))
