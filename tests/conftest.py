"""Shared fixtures: every test that scores runs once per instruction set this machine supports;
the run ends by naming the kernels it exercised and the compiled ones this CPU could not run."""

from __future__ import annotations

import colmax
import numpy as np
import pytest

_EXERCISED: set[str] = set()


@pytest.fixture(params=colmax.supported_isas())
def isa(request):
    """Force each supported kernel in turn (scalar included), restoring the default after."""
    before = colmax.active_isa()
    colmax.set_active_isa(request.param)
    _EXERCISED.add(request.param)
    yield request.param
    colmax.set_active_isa(before)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def pytest_terminal_summary(terminalreporter) -> None:
    """An AVX2-only CI machine passes without running AVX-512 or AMX code: say so in every run."""
    compiled = colmax.compiled_isas()
    exercised = [name for name in compiled if name in _EXERCISED]
    unreachable = [name for name in compiled if name not in colmax.supported_isas()]
    write = terminalreporter.write_line
    terminalreporter.write_sep("-", f"kernels (MaxSim and plaid) on {_cpu_name()}")
    write(f"exercised against the references: {', '.join(exercised) or 'none (no kernel test ran)'}")
    if unreachable:
        write(f"compiled but NOT exercised, this CPU cannot run them: {', '.join(unreachable)}")
    else:
        write("this CPU can run every compiled kernel")
