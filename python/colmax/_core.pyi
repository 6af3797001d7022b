"""Stubs for colmax._core, the C++ MaxSim engine (see colmax.scoring for the documented API)."""

import numpy as np

def maxsim(
    query: np.ndarray,
    doc_tokens: np.ndarray,
    doc_offsets: np.ndarray,
    *,
    candidates: np.ndarray | None = None,
    threads: int | None = None,
) -> np.ndarray: ...
def maxsim_batch(
    queries: list[np.ndarray],
    doc_tokens: np.ndarray,
    doc_offsets: np.ndarray,
    *,
    candidates: np.ndarray | None = None,
    threads: int | None = None,
) -> np.ndarray: ...
def maxsim_topk(
    query: np.ndarray,
    doc_tokens: np.ndarray,
    doc_offsets: np.ndarray,
    k: int,
    *,
    candidates: np.ndarray | None = None,
    threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray]: ...
def compiled_isas() -> list[str]: ...
def supported_isas() -> list[str]: ...
def active_isa() -> str: ...
def set_active_isa(name: str) -> None: ...
def default_threads() -> int: ...
def fma_peak_gflops(seconds: float = 0.5) -> float: ...
