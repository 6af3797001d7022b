"""The errors an index raises about itself (user errors in arguments are TypeError/ValueError)."""


class IndexFormatError(ValueError):
    """A directory is not a colmax index, or its files are damaged (truncated, altered)."""


class IndexVersionError(IndexFormatError):
    """The index is in a format this colmax cannot read: written by a newer colmax, or a plaid
    index of an older format."""


class IndexLockedError(OSError):
    """Another writer (this or another process) is writing to the index right now."""


def unknown_ids(missing: list[str]) -> KeyError:
    """The error for ids that are not in the index, naming the first few."""
    shown = ", ".join(repr(m) for m in missing[:5]) + (" ..." if len(missing) > 5 else "")
    return KeyError(f"{len(missing)} id(s) not in the index: {shown}")
