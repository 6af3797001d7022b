"""The README's LangChain and LlamaIndex examples run as written, in a fresh directory, and print
what the README shows beneath them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## RAG frameworks: LangChain and LlamaIndex"
# the default model's int8 vectors differ slightly between CPUs: printed scores may move in
# the last digits, while the words and the order must not
NUMBER = re.compile(r"-?\d+\.\d+")
SCORE_TOLERANCE = 0.02


def examples() -> list[tuple[str, str]]:
    text = README.read_text(encoding="utf-8")
    start = text.index(SECTION)
    section = text[start : text.index("\n## ", start + len(SECTION))]
    return re.findall(r"```python\n(.*?)```\s*```\n(.*?)```", section, re.S)


def lines(output: str) -> list[str]:
    return [line.rstrip() for line in output.strip().splitlines()]


def test_the_section_has_one_example_per_framework():
    found = examples()
    assert len(found) == 2
    assert "colmax.integrations.langchain" in found[0][0]
    assert "colmax.integrations.llama_index" in found[1][0]


@pytest.mark.parametrize("example", [0, 1], ids=["langchain", "llama-index"])
def test_readme_example_prints_what_it_shows(example, tmp_path):
    pytest.importorskip("langchain_core" if example == 0 else "llama_index.core")  # CI has both
    code, shown = examples()[example]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    printed = lines(result.stdout)
    assert [NUMBER.sub("#", line) for line in printed] == [NUMBER.sub("#", line) for line in lines(shown)]
    for got, want in zip(NUMBER.findall(result.stdout), NUMBER.findall(shown)):
        assert abs(float(got) - float(want)) <= SCORE_TOLERANCE, (got, want)
