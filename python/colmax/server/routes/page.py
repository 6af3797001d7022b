"""`GET /`: the search page, plain HTML, CSS and JavaScript served from the package (no build
step, nothing fetched from elsewhere, so it works offline)."""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

STATIC = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(include_in_schema=False)


@router.get("/")
def page() -> FileResponse:
    # the page holds no data: it asks for an API key when the server needs one
    return FileResponse(STATIC / "index.html", media_type="text/html")
