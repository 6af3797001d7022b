"""Shared fixtures: every test that scores runs once per instruction set this machine supports."""

from __future__ import annotations

import colmax
import numpy as np
import pytest


@pytest.fixture(params=colmax.supported_isas())
def isa(request):
    """Force each supported kernel in turn (scalar included), restoring the default after."""
    before = colmax.active_isa()
    colmax.set_active_isa(request.param)
    yield request.param
    colmax.set_active_isa(before)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
