"""The quickstart of integrations/llama-index/README.md runs as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "integrations" / "llama-index" / "README.md"


def quickstart(readme: Path) -> str:
    """The python block right after the ``<!-- quickstart ... -->`` marker."""
    found = re.search(r"<!-- quickstart[^>]*-->\s*```python\n(.*?)```", readme.read_text(), re.S)
    assert found, f"no quickstart block in {readme}"
    return found.group(1)


def test_readme_quickstart_runs(tmp_path):
    script = tmp_path / "quickstart.py"
    script.write_text(quickstart(README))
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    # The recalled memory comes first, as a system message, then today's question.
    assert lines[0].startswith("system | <relevant_memories>")
    assert any(
        "allergic to peanuts" in line for line in lines[: lines.index("user | Which snack should I buy?")]
    )
    assert "peanuts" in lines[-1]
