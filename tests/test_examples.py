"""The main job (``mem-adapters demo``) and the engine/LlamaIndex examples run offline, as shipped.

The LangChain examples are run by tests/langchain/test_lc_examples.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# example -> a line fragment its output must contain (what the example is about)
EXPECTED = {
    "quickstart.py": "best hit: I'm allergic to shellfish.",
    "async_quickstart.py": "['note 0', 'note 1', 'note 2', 'note 3', 'note 4']",
    "llama_index_query_engine.py": "source nodes:",
    "llama_index_agent.py": "Lisbon: sunny, 21C (I remember:",
}


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs_offline(name, tmp_path):
    proc = _run([sys.executable, str(ROOT / "examples" / name)], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert EXPECTED[name] in proc.stdout, proc.stdout[-3000:]


@pytest.mark.slow
def test_every_example_is_covered():
    langchain = {"langchain_rag.py", "langchain_agent_store.py"}
    assert {p.name for p in (ROOT / "examples").glob("*.py")} == set(EXPECTED) | langchain


@pytest.mark.slow
def test_main_job_records_and_recalls_in_the_default_store(tmp_path):
    cli = Path(sys.executable).parent / "mem-adapters"
    first = _run([str(cli), "demo"], tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "stored 6 new turns (0 already known)" in first.stdout
    answers = first.stdout.split("\nQ: ")[1:]
    # Each question's best hit (the first context line) is the turn that answers it.
    expected = ["allergic to shellfish", "I work as a nurse", "hiking along the coast near Sintra"]
    for answer, want in zip(answers, expected, strict=True):
        assert want in answer.splitlines()[1], answer
    assert (tmp_path / ".mem_adapters").is_dir()  # the embedded default, in the working directory
    again = _run([str(cli), "demo"], tmp_path)
    assert "stored 0 new turns (6 already known)" in again.stdout  # re-sending is a no-op
