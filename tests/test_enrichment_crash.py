"""Kill a real process mid-enrichment; a new engine on the same store resumes exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mem_adapters import MemoryEngine
from mem_adapters.enrichment import Enricher

HERE = Path(__file__).resolve().parent


@pytest.mark.slow
def test_sigkill_mid_job_then_resume_exactly_once(tmp_path, embedder):
    store, ready = tmp_path / "store", tmp_path / "ready"
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    proc = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "enrichment_crash_worker.py"),
            str(store),
            os.environ["MEM_ADAPTERS_MODEL_DIR"],
            str(ready),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        line = proc.stdout.readline().decode()  # all six remember() calls returned
        assert line.strip() == "written", proc.stderr.read().decode()[-2000:]
        deadline = time.time() + 60
        while not ready.exists() and time.time() < deadline:
            time.sleep(0.05)
        assert ready.exists()
        time.sleep(1.5)  # let it finish a job or so, and be inside the next one
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    engine = MemoryEngine(store, embedder=embedder, enricher=Enricher())
    try:
        mem, aux = engine._run(engine.aengine.collections("default"))
        before = engine._run(mem.get_all(where={"kind": "turn"}, include=["metadatas"]))
        states = [m["enrich"] for m in before["metadatas"]]
        assert len(states) == 6 and "pending" in states  # the kill really interrupted enrichment
        engine.wait_all(timeout=120)
        after = engine._run(mem.get_all(where={"kind": "turn"}, include=["metadatas"]))
        assert [m["enrich"] for m in after["metadatas"]] == ["done"] * 6
        facts = engine.list(kinds=["fact"], page_size=100).results
        keys = [(f.attributes["subject"], f.attributes["predicate"], f.attributes["value"]) for f in facts]
        assert len(keys) == len(set(keys))  # no duplicates
        texts = sorted(f.text for f in facts)
        assert len(texts) == len(set(texts))
        values = {f.attributes["predicate"]: f for f in facts if f.is_latest}
        assert values["lives_in"].attributes["value"] == "Berlin"
        assert values["lives_in"].supersedes  # Paris -> Berlin chain survived the crash
        assert sum(1 for f in facts if f.attributes["predicate"] == "lives_in") == 2
        assert {"favorite food", "works_as", "allergic_to:peanuts", "has"} <= set(values)
        jobs = engine._run(aux.get_all(where={"type": "job"}, include=["metadatas", "documents"]))
        assert jobs["ids"] and all(m["status"] == "done" for m in jobs["metadatas"])
        covered = [t for d in jobs["documents"] for t in json.loads(d)["turn_ids"]]
        assert sorted(set(covered)) == sorted(before["ids"])
        # Every turn is in exactly one episode.
        eps = engine.list(kinds=["episode"]).results
        in_eps = [t for e in eps for t in e.attributes["turn_ids"]]
        assert sorted(in_eps) == sorted(before["ids"])
    finally:
        engine.close()
