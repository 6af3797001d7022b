"""What the API answers when a request cannot be served: ``ApiError`` (an HTTP status, a short
code and a message naming the fix), and the translation of an index's exceptions into it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ..index.errors import IndexFormatError, IndexLockedError


class ApiError(Exception):
    """Answered as ``{"error": {"code": code, "message": message}}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}}


def _message(error: BaseException) -> str:
    # KeyError's str() is the repr of its argument: quotes around the whole message
    return str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)


@contextmanager
def index_errors() -> Iterator[None]:
    """Around a call into an index: the exceptions an index raises for bad arguments become 4xx
    answers. A damaged index is the server's problem (500), and anything else propagates as
    the bug it is."""
    try:
        yield
    except IndexFormatError as e:
        raise ApiError(500, "index_damaged", str(e)) from e
    except IndexLockedError as e:
        raise ApiError(409, "index_locked", str(e)) from e
    except KeyError as e:
        raise ApiError(404, "not_found", _message(e)) from e
    except (ValueError, TypeError) as e:
        raise ApiError(422, "invalid_argument", str(e)) from e
