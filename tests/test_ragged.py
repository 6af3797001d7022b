"""colmax.Ragged: the container that hands encoded items to the core without copies."""

import colmax
import numpy as np
import pytest


def test_indexing_iteration_and_views():
    mats = [np.full((n, 3), i, np.float32) for i, n in enumerate([2, 0, 4])]
    r = colmax.Ragged.from_list(mats)
    assert len(r) == 3 and r.dim == 3 and r.lengths.tolist() == [2, 0, 4]
    assert r[2].shape == (4, 3) and np.all(r[-1] == 2)
    assert np.shares_memory(r[0], r.tokens)
    assert [m.shape[0] for m in r] == [2, 0, 4]
    tail = r[1:]
    assert len(tail) == 2 and tail.offsets.tolist() == [0, 0, 4]
    with pytest.raises(IndexError):
        r[3]


def test_rejects_inconsistent_offsets():
    tokens = np.zeros((4, 2), np.float32)
    with pytest.raises(ValueError, match=r"end at tokens\.shape"):
        colmax.Ragged(tokens, np.array([0, 3], np.int64))
    with pytest.raises(ValueError, match="int64"):
        colmax.Ragged(tokens, np.array([0, 4], np.int32))
    with pytest.raises(ValueError, match="dim="):
        colmax.Ragged.from_list([])
