"""The quickstart of every README runs as written, offline, and prints what it promises."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def quickstart(readme: Path) -> str:
    """The python block right after the ``<!-- quickstart ... -->`` marker."""
    found = re.search(r"<!-- quickstart[^>]*-->\s*```python\n(.*?)```", readme.read_text(), re.S)
    assert found, f"no quickstart block in {readme}"
    return found.group(1)


def run_quickstart(readme: Path, tmp_path: Path) -> list[str]:
    script = tmp_path / "quickstart.py"
    script.write_text(quickstart(readme))
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.splitlines()


@pytest.mark.slow
def test_engine_readme(tmp_path):
    lines = run_quickstart(ROOT / "README.md", tmp_path)
    assert lines[0] == "I'm allergic to shellfish."
    assert "['ADD', 'UPDATE']" in lines
    assert (tmp_path / ".mem_adapters").is_dir()  # the embedded default store


@pytest.mark.slow
def test_langchain_readme(tmp_path):
    out = "\n".join(run_quickstart(ROOT / "integrations/langchain/README.md", tmp_path))
    assert "food Alice is allergic to shellfish" in out
    assert "Lisbon" in out


@pytest.mark.slow
def test_llama_index_readme(tmp_path):
    lines = run_quickstart(ROOT / "integrations/llama-index/README.md", tmp_path)
    # The recalled memory comes first, as a system message, then today's question.
    assert lines[0].startswith("system | <relevant_memories>")
    assert any(
        "allergic to peanuts" in line for line in lines[: lines.index("user | Which snack should I buy?")]
    )
    assert "peanuts" in lines[-1]
