"""Who may call and how much they may send: the API key check (a FastAPI dependency on every
route that reads or changes an index) and the request body cap (an ASGI middleware)."""

import hmac
from typing import Annotated, Optional

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .errors import ApiError
from .served import dumps

_bearer = HTTPBearer(auto_error=False, description="the key given to `colmax serve --api-key`")


# Optional[...] and no `from __future__ import annotations`: FastAPI reads this signature at run
# time, on Python 3.9 too
Credentials = Annotated[Optional[HTTPAuthorizationCredentials], Depends(_bearer)]


def require_key(request: Request, credentials: Credentials) -> None:
    """``Authorization: Bearer KEY`` must carry the server's key, when it has one."""
    key: bytes | None = request.app.state.api_key
    if key is None:
        return
    given = credentials.credentials.encode() if credentials is not None else b""
    # constant time: the comparison must not reveal how much of a guess was right
    if not hmac.compare_digest(given, key):
        reason = "a wrong API key" if credentials is not None else "no API key"
        raise ApiError(
            401,
            "unauthorized",
            f"this request carries {reason}: send the header 'Authorization: Bearer KEY'",
            headers={"WWW-Authenticate": "Bearer"},
        )


class BodyLimit:
    """Refuse (413) a request whose body is over ``max_bytes``, before the application reads
    it: by its Content-Length, or, for a chunked body, once the bytes received pass the cap.
    The body is buffered here (at most ``max_bytes``) and handed on unchanged."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                await self._refuse(send, 400, "bad_request", "the Content-Length header is not a number")
                return
            if size > self.max_bytes:
                await self._too_large(send, size)
                return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await self._too_large(send, size)
                return
            more = message.get("more_body", False)
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as usual

        await self.app(scope, replay, send)

    async def _too_large(self, send, size: int) -> None:
        await self._refuse(
            send,
            413,
            "too_large",
            f"the request body has {size} bytes or more, this server takes at most {self.max_bytes}: "
            "send fewer documents per request",
        )

    async def _refuse(self, send, status: int, code: str, message: str) -> None:
        body = dumps(ApiError(status, code, message).body())
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
