"""What colmax picks when it is not told: the index kind for a corpus size (``kind="auto"``), the
storage precision for this CPU, and the projected size of an index against the memory there is.

The threshold and the precision come from measurements on a 2-core Xeon with AVX-512 and AMX
(benchmarks/bench_defaults.py; README "Defaults"): exact MaxSim costs about 130 ns per stored
token per query in float32 and 55 ns in bfloat16 on 2 threads, so a float32 (or float16) exact
search passes 50 ms near 400,000 tokens, where a bfloat16 one takes about 25 ms.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

from .. import _core
from .manifest import INDEX_KINDS, STORAGE_DTYPES, Manifest

KINDS = ("auto", *INDEX_KINDS)
# Above this many stored tokens an "auto" index is plaid, and an exact index warns (once, when an
# add crosses it) that it has become slow: exact float32/float16 search p50 passes 50 ms here.
AUTO_PLAID_TOKENS = 400_000
# Instruction sets with native bfloat16 dot products (vdpbf16ps, AMX tiles).
_BF16_ISAS = ("avx512bf16", "amx")


def default_storage() -> str:
    """The exact indexes' default precision: bfloat16 where the CPU multiplies it natively (half
    of float32's bytes and the fastest kernel), float16 elsewhere (half the bytes too; its
    kernels convert to float32). Both cost at most 0.0002 nDCG@10 on SciFact and Cranfield."""
    return "bfloat16" if any(isa in _core.supported_isas() for isa in _BF16_ISAS) else "float16"


def resolve_kind(kind: str, n_tokens: int | None) -> str:
    """``kind`` ("auto", "exact" or "plaid") for a corpus of ``n_tokens`` stored tokens (None:
    unknown, as for an index created empty, which starts exact)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if kind != "auto":
        return kind
    return "plaid" if n_tokens is not None and n_tokens > AUTO_PLAID_TOKENS else "exact"


def estimate_tokens(
    encoder,
    texts: Sequence[str],
    passage_length: int | None = None,
    passage_stride: int | None = None,
    *,
    truncate: bool = False,
    titles: Sequence[str | None] | None = None,
    sample: int = 2000,
) -> int:
    """The number of token vectors ``encoder`` would store for ``texts`` (long documents as
    passages of ``passage_length`` tokens ``passage_stride`` apart, continued ones carrying
    ``titles``, or cut with ``truncate``), from tokenizing up to ``sample`` of them spread over
    the corpus (tokenizing is ~1,000x cheaper than encoding)."""
    if not texts:
        return 0
    step = max(1, len(texts) // sample)
    chosen = list(texts[::step])
    named = None if titles is None else list(titles[::step])
    tokenized, _ = encoder.tokenizer.passages(
        chosen, passage_length, passage_stride, truncate=truncate, titles=named
    )
    kept = sum(int(keep.sum()) for keep in tokenized.keep)
    return round(kept * len(texts) / len(chosen))


def bytes_per_token(kind: str, dim: int, storage: str | None, nbits: int | None) -> float:
    """The stored bytes of one token vector: its full-precision copy, and for plaid its residual
    plus about one byte of centroid ids and inverted file (docs/plaid.md)."""
    copy = 0 if storage is None else dim * int(STORAGE_DTYPES[storage][-1])
    copy += 4 if storage == "int8" else 0  # each row's float32 scale
    return copy + (dim * nbits / 8 + 1 if kind == "plaid" else 0)


def available_memory() -> int | None:
    """Bytes of memory available without swapping (Linux's MemAvailable: free memory plus the
    page cache it can drop), or None where /proc/meminfo does not say."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def warn_if_grown_past(before: Manifest, after: Manifest, path) -> None:
    """Warn once, on the commit that crosses AUTO_PLAID_TOKENS, that an exact index has grown
    past where exact search is fast. The kind is never changed silently: the warning names the
    command that does it."""
    if after.kind != "exact" or not before.n_tokens <= AUTO_PLAID_TOKENS < after.n_tokens:
        return
    warnings.warn(
        f"the exact index {path} now holds {after.n_tokens:,} token vectors, past the "
        f"{AUTO_PLAID_TOKENS:,} where exact search stays fast (about 50 ms per query on 2 cores): "
        f"compress it without re-encoding with `colmax compress {path}` (or index.compress())",
        stacklevel=5,
    )
