"""Progress bars: tqdm when asked for, and then only (tqdm is not imported otherwise)."""

from __future__ import annotations

import sys


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: int, enabled: bool, *, unit: str, desc: str):
    """An object with ``update(n)`` and ``close()``: a tqdm bar, or a silent one when disabled."""
    if not enabled:
        return _Silent()
    from tqdm.auto import tqdm

    return tqdm(total=total, unit=unit, desc=desc)


def wanted(progress: bool | None) -> bool:
    """``progress`` as given, or for None whether a person is watching: stderr is a terminal."""
    if progress is None:
        return sys.stderr.isatty()
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be True, False or None (show it on a terminal), got {progress!r}")
    return progress
