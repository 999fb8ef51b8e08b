"""A loopback TCP proxy that loses answers after the server committed them (fault tests)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable


class DroppingProxy:
    """Forwards HTTP/1.1 over TCP to ``upstream``.

    For up to ``drops`` requests whose request line ``drop_if`` accepts, it reads the server's
    whole answer (the server has committed), then closes the client's connection without
    passing the answer on.
    """

    def __init__(self, upstream: tuple[str, int], drops: int, drop_if: Callable[[bytes], bool]) -> None:
        self.upstream, self.drops, self.dropped = upstream, drops, 0
        self.drop_if = drop_if
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    @staticmethod
    def _read_http(sock: socket.socket) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        return head + b"\r\n\r\n" + body

    def _handle(self, conn: socket.socket) -> None:
        with conn, socket.create_connection(self.upstream) as up:
            while True:
                request = self._read_http(conn)
                if not request:
                    return
                up.sendall(request)
                answer = self._read_http(up)
                if self.dropped < self.drops and self.drop_if(request.split(b"\r\n", 1)[0]):
                    self.dropped += 1  # committed on the server; the client never hears of it
                    conn.shutdown(socket.SHUT_RDWR)
                    return
                conn.sendall(answer)

    def close(self) -> None:
        self._stop = True
        self.sock.close()
