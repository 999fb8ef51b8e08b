"""A real ``chroma run`` on a free loopback port, and the subprocesses the bench runs.

The server is the venv's own ``chroma`` executable (next to the running Python). It is always
stopped by :class:`ChromaServer`'s context exit, whatever happened inside.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from ..errors import MemAdaptersError

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"


class BenchError(MemAdaptersError):
    """A benchmark step could not run (server did not start, a probe failed)."""


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def chroma_executable() -> str:
    """The ``chroma`` CLI of this interpreter's environment."""
    exe = Path(sys.executable).with_name("chroma")
    if not exe.is_file():
        raise BenchError(f"no chroma executable next to {sys.executable}; install chromadb in this venv")
    return str(exe)


class ChromaServer:
    """``chroma run --path PATH --host 127.0.0.1 --port PORT`` for the duration of a ``with``.

    Args:
        path: Persistence folder.
        start_timeout: Seconds to wait for the heartbeat.
    """

    def __init__(self, path: str | os.PathLike[str], start_timeout: float = 60.0) -> None:
        self.path = Path(path)
        self.port = free_port()
        self.host = HOST
        self.start_timeout = start_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = self.path.parent / f"chroma-run-{self.port}.log"

    def __enter__(self) -> ChromaServer:
        self.path.mkdir(parents=True, exist_ok=True)
        cmd = [
            chroma_executable(),
            "run",
            "--path",
            str(self.path),
            "--host",
            self.host,
            "--port",
            str(self.port),
        ]
        env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
        with self._log.open("wb") as log:
            self._proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        url = f"http://{self.host}:{self.port}/api/v2/heartbeat"
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self.stop()
                raise BenchError(f"chroma run exited with {self._proc.returncode}; see {self._log}")
            try:
                with urllib.request.urlopen(url, timeout=1) as r:  # loopback only
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise BenchError(f"chroma run did not answer on {url} within {self.start_timeout} s")

    def stop(self) -> None:
        """Terminate the server (kill it after 10 s)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_probe(role: str, spec: dict[str, Any]) -> subprocess.Popen[str]:
    """Start ``python -m mem_adapters.benchscale.probe ROLE SPEC_FILE`` in a fresh process."""
    fd, spec_path = tempfile.mkstemp(prefix=f"bench-scale-{role}-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(spec, fh)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mem_adapters.benchscale.probe", role, spec_path],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    proc.spec_path = spec_path  # type: ignore[attr-defined]
    return proc


def finish_probe(proc: subprocess.Popen[str], role: str, timeout: float) -> dict[str, Any]:
    """Wait for a probe (killing it after ``timeout`` s) and parse its result."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate(timeout=10)
        raise BenchError(f"probe {role!r} did not finish within {timeout:.0f} s") from None
    finally:
        Path(proc.spec_path).unlink(missing_ok=True)  # type: ignore[attr-defined]
    if proc.returncode != 0:
        raise BenchError(f"probe {role!r} failed ({proc.returncode}): {err.strip()[-2000:]}")
    lines = [line for line in out.splitlines() if line.strip()]
    if not lines:
        raise BenchError(f"probe {role!r} printed nothing: {err.strip()[-2000:]}")
    return dict(json.loads(lines[-1]))


def run_probe(role: str, spec: dict[str, Any], timeout: float = 1800.0) -> dict[str, Any]:
    """Run one probe to completion in a fresh process and return its JSON result."""
    return finish_probe(start_probe(role, spec), role, timeout)


__all__ = ["HOST", "BenchError", "ChromaServer", "chroma_executable", "free_port", "run_probe", "start_probe"]
