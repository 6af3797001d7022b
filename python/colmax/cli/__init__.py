"""The `colmax` command line (entry point ``colmax.cli:main``)."""

from .main import main

__all__ = ["main"]
