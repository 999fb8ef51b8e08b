"""Run ``mem-adapters serve`` as a child process on a free loopback port (tests, benchmarks).

Example:
    >>> with ServerProcess(["--insecure-no-auth", "--path", "/tmp/m"]) as srv:  # doctest: +SKIP
    ...     httpx.get(srv.url + "/readyz").json()
    {'status': 'ready', 'detail': None}
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from ..errors import TransportError

logger = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """``mem-adapters serve ARGS --host 127.0.0.1 --port <free>`` until :meth:`stop`.

    Args:
        args: Extra ``serve`` arguments (store, auth...).
        port: Port to bind (default: a free one).
        ready_timeout: Seconds to wait for ``/readyz``.
        env: Extra environment variables.
    """

    def __init__(
        self,
        args: list[str],
        *,
        port: int | None = None,
        ready_timeout: float = 90.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.args = list(args)
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.ready_timeout = ready_timeout
        self.env = {**os.environ, "ANONYMIZED_TELEMETRY": "False", **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.log_path = Path(tempfile.mkstemp(prefix="mem-adapters-serve-", suffix=".log")[1])

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"http://{self.host}:{self.port}"

    def log(self) -> str:
        """What the server printed so far."""
        return self.log_path.read_text(errors="replace")

    def start(self) -> ServerProcess:
        """Start the server and wait until it is ready.

        Raises:
            TransportError: it exited or was not ready in time (its log is in the message).
        """
        import httpx

        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        cmd = [
            sys.executable,
            "-m",
            "mem_adapters",
            "serve",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--log-level",
            "warning",
            *self.args,
        ]
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + self.ready_timeout
        while True:
            if self.proc.poll() is not None:
                raise TransportError(f"server exited with {self.proc.returncode}: {self.log()[-3000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise TransportError(f"server not ready after {self.ready_timeout}s: {self.log()[-3000:]}")
            time.sleep(0.2)

    def kill(self) -> None:
        """Kill the server at once (no graceful shutdown)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        """Stop the server gracefully (SIGTERM, then SIGKILL after 20 s)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
