"""The LangChain examples run offline, as shipped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["langchain_rag.py", "langchain_agent_store.py"])
def test_example_runs_offline(name, tmp_path):
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "answer:" in proc.stdout
    if name == "langchain_agent_store.py":
        # The second thread saw the fact saved in the first one.
        assert "[friday] 'What you know about the user:\\nI am allergic to shellfish" in proc.stdout
