"""``mem-adapters ui``: the inspector on a local store, loopback only, without auth."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

from mem_adapters.cli import main
from mem_adapters.server.process import free_port

pytest.importorskip("fastapi")


def test_ui_refuses_a_non_loopback_address(tmp_path, capsys):
    assert main(["ui", "--path", str(tmp_path / "s"), "--host", "0.0.0.0", "--no-open"]) != 0
    assert "loopback" in capsys.readouterr().err


def test_ui_serves_the_inspector_and_the_api_without_auth(tmp_path):
    port = free_port()
    cmd = [sys.executable, "-m", "mem_adapters", "ui", "--path", str(tmp_path / "s"), "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "--no-open", "--no-enrich"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if proc.poll() is not None:
                pytest.fail(f"ui exited: {proc.stdout.read().decode() if proc.stdout else ''}")
            try:
                if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        page = httpx.get(base + "/ui/")
        assert page.status_code == 200 and "mem-adapters inspector" in page.text
        assert "unsafe-inline" not in page.headers["content-security-policy"]
        assert httpx.get(base + "/v1/users").json()["count"] == 0  # no credential needed
        assert httpx.get(base + "/v1/tenants").status_code == 200  # the local caller is an admin
    finally:
        proc.terminate()
        proc.wait(timeout=30)
