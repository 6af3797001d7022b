"""`colmax serve` as a command: naming indexes, refusing bad names, and telling how to install
the server extra when it is missing; `import colmax` imports no web framework."""

from __future__ import annotations

import subprocess
import sys

import pytest
from colmax.cli import main
from colmax.cli.serve import targets


def test_targets(tmp_path):
    assert targets([str(tmp_path / "a"), f"b={tmp_path / 'x'}"]) == {"a": tmp_path / "a", "b": tmp_path / "x"}
    assert list(targets(["some/dir/"])) == ["dir"]
    with pytest.raises(ValueError, match="two indexes are named 'a'"):
        targets([str(tmp_path / "a"), f"a={tmp_path / 'b'}"])
    with pytest.raises(ValueError, match="given twice"):
        targets([str(tmp_path / "a"), f"b={tmp_path / 'x' / '..' / 'a'}"])


def test_bad_names_and_paths_fail_before_serving(tmp_path, capsys):
    pytest.importorskip("fastapi")
    from colmax.index import Index

    Index.create(tmp_path / "ix").close()
    for spec, message in [
        (f"a/b={tmp_path / 'ix'}", "index name 'a/b'"),
        (f"..={tmp_path / 'ix'}", "index name '..'"),
        (str(tmp_path / "missing"), "missing"),
    ]:
        assert main(["serve", spec, "--port", "1"]) == 2
        assert message in capsys.readouterr().err


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_missing_extra_names_the_install_command(tmp_path):
    # the server's frameworks made unimportable, as in a core-only install
    code = (
        "import sys\n"
        "sys.modules['fastapi'] = None\n"
        "from colmax.cli import main\n"
        f"sys.exit(main(['serve', {str(tmp_path)!r}]))\n"
    )
    result = run_python(code)
    assert result.returncode == 2
    assert 'pip install "colmax[server]"' in result.stderr


def test_import_colmax_imports_no_framework():
    result = run_python(
        "import sys, colmax\n"
        "assert colmax.Client\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in "
        "('fastapi', 'starlette', 'uvicorn', 'pydantic', 'selenium', 'colmax.server.app')]\n"
        "heavy += [m for m in sys.modules if m.startswith('colmax.server.') and m not in "
        "('colmax.server.client', 'colmax.server.wire')]\n"
        "print(heavy)\n"
        "sys.exit(1 if heavy else 0)\n"
    )
    assert result.returncode == 0, result.stdout + result.stderr
