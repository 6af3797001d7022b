"""`colmax serve`: indexes as a JSON API over HTTP with a search page (extra ``colmax[server]``).

``app.create_app`` builds the FastAPI application; ``client.Client`` talks to it with the
standard library only, so a client needs no extra. Nothing here imports FastAPI at import time:
only ``app`` and the modules it assembles do (docs/server.md).
"""
