"""The FastAPI application: routes, error answers, the API key, body and CORS settings; and
``run``, which serves it with uvicorn. Imports FastAPI: install ``colmax[server]``."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from contextlib import asynccontextmanager
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from .._version import __version__
from .errors import ApiError
from .limits import Limits
from .routes import documents, encode, meta, page, search
from .security import BodyLimit
from .served import Registry, Servable

log = logging.getLogger("colmax.server")


def create_app(
    indexes: Mapping[str, Servable],
    *,
    api_key: str | None = None,
    cors: Sequence[str] = (),
    limits: Limits | None = None,
    readers: int = 16,
) -> FastAPI:
    """An application serving ``indexes`` (name -> an open ``Index`` or anything with its methods)
    under ``/indexes/{name}``. The application owns them: it closes them when it shuts down.

    ``api_key``: every route that reads or changes an index then needs ``Authorization: Bearer
    KEY``. ``cors``: origins whose pages may call the API from a browser (none by default).
    ``readers``: threads running searches concurrently."""
    if api_key is not None and not api_key:
        raise ValueError("api_key is empty: pass a non-empty key, or None for no key")
    registry = Registry(indexes, readers=readers)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        registry.close()

    app = FastAPI(
        title="colmax",
        version=__version__,
        description="Late-interaction (ColBERT-style) retrieval: search, explain, add, delete, encode. "
        'Errors are `{"error": {"code", "message"}}`.',
        lifespan=lifespan,
    )
    app.state.registry = registry
    app.state.api_key = api_key.encode() if api_key else None
    app.state.limits = limits or Limits()
    for router in (meta.public, page.router, meta.router, search.router, documents.router, encode.router):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=page.STATIC), name="static")
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _internal_error)
    # the last added is the outermost: CORS answers preflights before the body cap runs
    app.add_middleware(BodyLimit, max_bytes=app.state.limits.max_body_bytes)
    if cors:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    return app


def _error(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse(ApiError(status, code, message).body(), status_code=status, headers=headers)


async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
    return _error(exc.status, exc.code, exc.message, exc.headers)


async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    for e in errors:
        if e["type"] == "json_invalid":
            reason = (e.get("ctx") or {}).get("error", "")
            return _error(400, "invalid_json", f"the request body is not valid JSON: {reason}".rstrip(": "))
    if any(e["loc"] == ("body",) for e in errors) and "json" not in request.headers.get("content-type", ""):
        return _error(
            422, "invalid_request", "the request body must be JSON, sent with Content-Type: application/json"
        )
    parts = []
    for e in errors[:5]:
        where = ".".join(str(p) for p in e["loc"][1:] if p != "body") or e["loc"][0]
        parts.append(f"{where}: {e['msg']}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return _error(422, "invalid_request", "; ".join(parts) + more + " (see /docs for the request shapes)")


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    status = exc.status_code
    if status == 404:
        message = f"no route {request.method} {request.url.path}: see /docs for the API"
    elif status == 405:
        message = f"{request.method} is not allowed on {request.url.path}: see /docs for the API"
    else:
        message = str(exc.detail)
    code = (
        HTTPStatus(status).phrase.lower().replace(" ", "_")
        if status in HTTPStatus._value2member_map_
        else "error"
    )
    return _error(status, code, message, getattr(exc, "headers", None))


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("internal error on %s %s", request.method, request.url.path, exc_info=exc)
    return _error(
        500, "internal", f"internal error ({type(exc).__name__}): please report it with `colmax info`"
    )


def run(app: FastAPI, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    """Serve ``app`` until interrupted (Ctrl-C or SIGTERM)."""
    import uvicorn

    config = uvicorn.Config(
        app, host=host, port=port, log_level=log_level, server_header=False, timeout_graceful_shutdown=10
    )
    uvicorn.Server(config).run()
