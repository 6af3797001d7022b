"""colmax: fast ColBERT-style late-interaction retrieval on CPUs."""

from ._core import active_isa, compiled_isas, set_active_isa, supported_isas
from ._version import __version__
from .distributed import ShardedIndex, ShardUnavailableError
from .encoding import Encoder
from .index import (
    Document,
    Explanation,
    Hit,
    Index,
    IndexFormatError,
    IndexLockedError,
    IndexReadOnlyError,
    IndexVersionError,
)
from .ragged import Ragged
from .scoring import from_bfloat16, maxsim, maxsim_batch, maxsim_topk, quantize_int8, to_bfloat16
from .server.client import Client  # standard library only: the server's framework is not imported

__all__ = [
    "Client",
    "Document",
    "Encoder",
    "Explanation",
    "Hit",
    "Index",
    "IndexFormatError",
    "IndexLockedError",
    "IndexReadOnlyError",
    "IndexVersionError",
    "Ragged",
    "ShardUnavailableError",
    "ShardedIndex",
    "__version__",
    "active_isa",
    "compiled_isas",
    "from_bfloat16",
    "maxsim",
    "maxsim_batch",
    "maxsim_topk",
    "quantize_int8",
    "set_active_isa",
    "supported_isas",
    "to_bfloat16",
]
