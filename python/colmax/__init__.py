"""colmax: fast ColBERT-style late-interaction retrieval on CPUs."""

from importlib.metadata import PackageNotFoundError, version

from ._core import active_isa, compiled_isas, set_active_isa, supported_isas
from .encoder import Encoder
from .index import Document, Explanation, Hit, Index, IndexFormatError, IndexLockedError, IndexVersionError
from .ragged import Ragged
from .scoring import from_bfloat16, maxsim, maxsim_batch, maxsim_topk, to_bfloat16

try:
    __version__ = version("colmax")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "Document",
    "Encoder",
    "Explanation",
    "Hit",
    "Index",
    "IndexFormatError",
    "IndexLockedError",
    "IndexVersionError",
    "Ragged",
    "__version__",
    "active_isa",
    "compiled_isas",
    "from_bfloat16",
    "maxsim",
    "maxsim_batch",
    "maxsim_topk",
    "set_active_isa",
    "supported_isas",
    "to_bfloat16",
]
