"""The `colmax` command line."""

import subprocess
import sys

import colmax


def test_info_prints_version_and_isas():
    out = subprocess.run(
        [sys.executable, "-m", "colmax", "info"], capture_output=True, text=True, check=True
    ).stdout
    assert f"colmax {colmax.__version__}" in out
    assert "compiled ISAs:" in out and colmax.active_isa() in out
