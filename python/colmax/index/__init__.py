"""The persistent index: ``Index`` (the facade users meet), what it returns, and its errors.

Beside the facade: ``snapshot`` (a loaded commit), ``query``, ``hybrid``, ``search``,
``keyword`` and ``fusion`` (the read path: modes, MaxSim, BM25, their fusion), ``write`` and
``rewrite`` (the write path), ``manifest``, ``segments``, ``store``, ``codebook``, ``lock`` and
``files`` (the on-disk format), ``filters``, ``model``, ``explain``, ``maintenance``.
"""

from .errors import IndexFormatError, IndexLockedError, IndexReadOnlyError, IndexVersionError
from .facade import Index
from .types import Document, Explanation, Hit

__all__ = [
    "Document",
    "Explanation",
    "Hit",
    "Index",
    "IndexFormatError",
    "IndexLockedError",
    "IndexReadOnlyError",
    "IndexVersionError",
]
