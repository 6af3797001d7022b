"""The errors an index raises about itself (user errors in arguments are TypeError/ValueError)."""


class IndexFormatError(ValueError):
    """A directory is not a colmax index, or its files are damaged (truncated, altered)."""


class IndexVersionError(IndexFormatError):
    """The index is in a format this colmax cannot read: written by a newer colmax, or a plaid
    index of an older format."""


class IndexLockedError(OSError):
    """Another writer (this or another process) is writing to the index right now."""


class IndexReadOnlyError(PermissionError):
    """A write to an index this process may only read (permissions, a read-only file system)."""


def read_only(directory, cause: OSError | Exception) -> IndexReadOnlyError:
    return IndexReadOnlyError(
        f"{directory} is read-only for this process ({cause}): writes (add, delete, update, compact, ...) "
        "need write permission on the index directory and its files; searching it works as it is, "
        "or copy it somewhere writable"
    )


def unknown_ids(missing: list[str]) -> KeyError:
    """The error for ids that are not in the index, naming the first few."""
    shown = ", ".join(repr(m) for m in missing[:5]) + (" ..." if len(missing) > 5 else "")
    return KeyError(f"{len(missing)} id(s) not in the index: {shown}")
