"""Frameworks load only when their adapter is imported, and a missing one names the extra."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

FRAMEWORKS = [
    # adapter module, the framework's top-level modules, the extra
    ("colmax.integrations.langchain", ("langchain_core", "langchain"), "langchain"),
    ("colmax.integrations.llama_index", ("llama_index",), "llama-index"),
]


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )


def test_import_colmax_loads_no_framework():
    result = run(
        """
        import sys
        import colmax, colmax.integrations, colmax.integrations.common
        frameworks = ("langchain_core", "langchain", "llama_index")
        print(sorted(m for m in sys.modules if m.split(".")[0] in frameworks))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(("module", "packages", "extra"), FRAMEWORKS)
def test_a_missing_framework_names_the_extra(module, packages, extra):
    # a None entry in sys.modules makes `import package` fail as if it were not installed
    result = run(
        f"""
        import sys
        for name in {packages!r}:
            sys.modules[name] = None
        try:
            import {module}
        except ImportError as error:
            print(error)
        else:
            print("imported")
        """
    )
    assert result.returncode == 0, result.stderr
    assert f'pip install "colmax[{extra}]"' in result.stdout
    assert module in result.stdout
