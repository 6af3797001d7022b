"""The errors an index raises about itself (user errors in arguments are TypeError/ValueError)."""


class IndexFormatError(ValueError):
    """A directory is not a colmax index, or its files are damaged (truncated, altered)."""


class IndexVersionError(IndexFormatError):
    """The index is in a format this colmax cannot read: written by a newer colmax, or a plaid
    index of an older format."""


class IndexLockedError(OSError):
    """Another writer (this or another process) is writing to the index right now."""
