"""``mem-adapters mcp`` through the official SDK's own client: stdio subprocess and streamable HTTP.

Every server here is a real subprocess (stdio pipes, or uvicorn on a free loopback port) over a
real embedded store or a real ``mem-adapters serve``; nothing is mocked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import jwt
import pytest

pytest.importorskip("mcp")

import httpx
import httpx2
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from mem_adapters.errors import ValidationError
from mem_adapters.mcp_server import TOOL_NAMES, McpConfig
from mem_adapters.mcp_server.run import check
from mem_adapters.server.process import ServerProcess, free_port
from mem_adapters.server.settings import ServerSettings

SECRET = "mcp-test-secret-" + "q" * 32
ENV = {
    k: v
    for k, v in os.environ.items()
    if k.startswith("MEM_ADAPTERS_") or k in ("PATH", "HOME", "HF_HOME", "XDG_CACHE_HOME")
}
ENV["ANONYMIZED_TELEMETRY"] = "False"


def token(org: str, sub: str = "dana") -> str:
    now = int(time.time())
    return jwt.encode({"org_id": org, "sub": sub, "iat": now, "exp": now + 900}, SECRET, "HS256")


def data(result) -> dict:
    assert not result.is_error, result.content
    if result.structured_content is not None:
        return result.structured_content
    return json.loads(result.content[0].text)


def error_text(result) -> str:
    assert result.is_error, result
    return result.content[0].text


def stdio(*args: str) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", "mem_adapters", "mcp", *args], env=ENV)


async def test_stdio_tools_round_trip_scoped_by_configuration(tmp_path):
    params = stdio(
        "--path", str(tmp_path / "s"), "--tenant", "acme", "--user", "dana", "--session", "s1", "--no-enrich"
    )
    async with Client(params, read_timeout_seconds=120) as c:
        assert {t.name for t in (await c.list_tools()).tools} == set(TOOL_NAMES)
        got = data(await c.call_tool("remember", {"text": "I am allergic to shellfish"}))
        assert got["created"] == 1 and len(got["memory_ids"]) == 1
        mid = got["memory_ids"][0]
        data(
            await c.call_tool(
                "remember",
                {
                    "messages": [
                        {"role": "user", "text": "My sister Ana lives in Lisbon"},
                        {"role": "assistant", "text": "Noted, Ana in Lisbon."},
                    ]
                },
            )
        )

        flat = data(await c.call_tool("search", {"query": "what food allergy do I have", "k": 3}))
        assert flat["mode"] == "flat" and "context" not in flat
        assert flat["results"][0]["id"] == mid and flat["results"][0]["user_id"] == "dana"
        ctx = data(await c.call_tool("search", {"query": "where does Ana live", "mode": "context"}))
        assert "Lisbon" in ctx["context"]

        page = data(await c.call_tool("list_memories", {"page_size": 10}))
        assert page["count"] == 3 and [r["session_id"] for r in page["results"]] == ["s1"] * 3
        assert (
            data(await c.call_tool("get_memory", {"memory_id": mid}))["text"] == "I am allergic to shellfish"
        )

        # A configured user cannot be overridden by a tool call.
        assert "scoped to user 'dana'" in error_text(await c.call_tool("erase_user", {"user_id": "eve"}))
        assert "scoped" in error_text(await c.call_tool("search", {"query": "x", "user_id": "eve"}))
        # Bad input is a tool error with the library's message; the server keeps running.
        assert "ValidationError" in error_text(await c.call_tool("remember", {}))

        assert data(await c.call_tool("delete_memory", {"memory_id": mid})) == {"deleted": mid}
        assert "NotFoundError" in error_text(await c.call_tool("get_memory", {"memory_id": mid}))
        receipt = data(await c.call_tool("erase_user", {"user_id": "dana"}))
        assert receipt["tenant_id"] == "acme" and receipt["user_id"] == "dana" and receipt["turns"] == 2
        assert data(await c.call_tool("list_memories", {}))["count"] == 0


class HttpMcp:
    def __init__(self, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        cmd = [
            sys.executable,
            "-m",
            "mem_adapters",
            "mcp",
            "--transport",
            "http",
            "--port",
            str(self.port),
            *args,
        ]
        self.proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, self.proc.stderr.read().decode()
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.2)
            assert time.monotonic() < deadline, "MCP HTTP server did not start"

    def client(self, bearer: str | None) -> Client:
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        http = httpx2.AsyncClient(headers=headers, timeout=120)
        return Client(streamable_http_client(self.url, http_client=http), read_timeout_seconds=120)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def http_mcp(tmp_path_factory):
    srv = HttpMcp(
        "--path", str(tmp_path_factory.mktemp("mcp-http") / "s"), "--jwt-secret", SECRET, "--no-enrich"
    )
    yield srv
    srv.stop()


async def test_streamable_http_scoped_by_token(http_mcp):
    a, b = f"a-{uuid.uuid4().hex[:6]}", f"b-{uuid.uuid4().hex[:6]}"
    async with http_mcp.client(token(a)) as ca:
        assert {t.name for t in (await ca.list_tools()).tools} == set(TOOL_NAMES)
        mid = data(await ca.call_tool("remember", {"text": "I prefer window seats", "session_id": "trip"}))[
            "memory_ids"
        ][0]
        hits = data(await ca.call_tool("search", {"query": "seat preference"}))["results"]
        assert hits[0]["id"] == mid and hits[0]["user_id"] == "dana"  # the token's sub is the default user
    async with http_mcp.client(token(b)) as cb:
        assert data(await cb.call_tool("search", {"query": "seat preference"}))["results"] == []
        assert data(await cb.call_tool("list_memories", {}))["count"] == 0
        assert "NotFoundError" in error_text(await cb.call_tool("get_memory", {"memory_id": mid}))
        assert "NotFoundError" in error_text(await cb.call_tool("delete_memory", {"memory_id": mid}))
    async with http_mcp.client(token(a)) as ca:
        assert data(await ca.call_tool("get_memory", {"memory_id": mid}))["text"] == "I prefer window seats"


async def test_streamable_http_refuses_calls_without_a_valid_token(http_mcp):
    async with http_mcp.client(None) as c:
        assert "AuthenticationError" in error_text(await c.call_tool("search", {"query": "x"}))
    forged = jwt.encode(
        {"org_id": "acme", "exp": int(time.time()) + 60}, "another-secret-" + "x" * 32, "HS256"
    )
    async with http_mcp.client(forged) as c:
        assert "AuthenticationError" in error_text(await c.call_tool("list_memories", {}))


async def test_stdio_over_the_rest_service_uses_the_token_tenant(tmp_path):
    with ServerProcess(["--path", str(tmp_path / "svc"), "--jwt-secret", SECRET, "--no-enrich"]) as srv:
        async with Client(
            stdio("--service", srv.url, "--token", token("svc-a")), read_timeout_seconds=120
        ) as c:
            mid = data(await c.call_tool("remember", {"text": "My dog is called Rex", "session_id": "pets"}))[
                "memory_ids"
            ][0]
            hits = data(await c.call_tool("search", {"query": "dog name", "mode": "context"}))
            assert hits["results"][0]["id"] == mid and "Rex" in hits["context"]
            assert data(await c.call_tool("get_memory", {"memory_id": mid}))["session_id"] == "pets"
        # The write landed in the token's tenant, seen by the REST API with the same token ...
        seen = httpx.post(
            srv.url + "/v1/memories/", json={}, headers={"Authorization": f"Bearer {token('svc-a')}"}
        )
        assert seen.status_code == 200 and seen.json()["count"] == 1
        # ... and not by another tenant's MCP session.
        async with Client(
            stdio("--service", srv.url, "--token", token("svc-b")), read_timeout_seconds=120
        ) as c:
            assert data(await c.call_tool("list_memories", {}))["count"] == 0
            assert "NotFoundError" in error_text(await c.call_tool("get_memory", {"memory_id": mid}))


def test_check_refuses_unauthenticated_non_loopback_http():
    check(McpConfig(path=None), "http", "127.0.0.1")
    check(McpConfig(), "stdio", "0.0.0.0")
    with pytest.raises(ValidationError):
        check(McpConfig(), "http", "0.0.0.0")
    with pytest.raises(ValidationError):
        check(McpConfig(service_url="http://svc", token="t"), "http", "0.0.0.0")
    check(McpConfig(service_url="http://svc"), "http", "0.0.0.0")
    check(McpConfig(auth=ServerSettings(jwt_secret=SECRET)), "http", "0.0.0.0")
    with pytest.raises(ValidationError):
        check(McpConfig(token="t"), "stdio", "127.0.0.1")
