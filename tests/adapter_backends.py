"""The adapter suites' backends: each adapter test runs on an embedded engine and on the service.

``engine`` / ``aengine`` (overriding the root conftest's) are parametrized: ``engine`` is a
fresh embedded :class:`~mem_adapters.MemoryEngine`, ``client`` a
:class:`~mem_adapters.client.MemoryClient` (``AsyncMemoryClient`` for ``aengine``) talking to
one real ``mem-adapters serve`` on a free loopback port, shared by the whole session. Each
client test gets a token of a fresh tenant, so tests never see each other's data.

Tests that need an engine itself (its folder, its loop, its enricher, other tenants) carry
``@pytest.mark.engine_only``: their ``client`` variant is skipped with that reason.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

SECRET = "adapter-suites-secret-" + "a" * 32
BACKENDS = ["engine", "client"]

_server: Any = None


def token(tenant: str, **claims: Any) -> str:
    """A JWT of ``tenant`` without a user (the adapters name their users themselves)."""
    import jwt

    now = int(time.time())
    return jwt.encode({"org_id": tenant, "iat": now, "exp": now + 6 * 3600, **claims}, SECRET, "HS256")


def new_tenant() -> str:
    """A tenant nobody used yet."""
    return f"t{uuid.uuid4().hex[:12]}"


def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The session's one ``mem-adapters serve`` (started on first use)."""
    global _server
    if _server is None:
        pytest.importorskip("fastapi")
        from mem_adapters.server.process import ServerProcess

        store = tmp_path_factory.mktemp("adapter-svc") / "store"
        # No enrichment, like the ``engine`` variant (MemoryEngine's default).
        args = ["--path", str(store), "--jwt-secret", SECRET, "--no-enrich"]
        _server = ServerProcess(args, ready_timeout=180).start()
    return _server


def stop_shared_server() -> None:
    """Stop the session's server (idempotent: both suites' session fixtures call it)."""
    global _server
    if _server is not None:
        _server.stop()
        _server = None


def client_for(server: Any, tenant: str | None = None, *, sync: bool = True) -> Any:
    """A client of ``server`` with a token of ``tenant`` (default: a fresh one)."""
    from mem_adapters.client import AsyncMemoryClient, MemoryClient

    cls = MemoryClient if sync else AsyncMemoryClient
    return cls(server.url, token=token(tenant or new_tenant()), backoff=0.05)


@contextlib.contextmanager
def in_tenant(engine: Any, tenant: str) -> Iterator[tuple[Any, dict[str, str]]]:
    """``(backend, kwargs)`` acting in ``tenant``: the engine with ``tenant_id=tenant``, or a
    client of the same service holding a token of ``tenant`` (the service's tenant is the
    credential's), closed on exit."""
    from mem_adapters import AsyncMemoryEngine, MemoryEngine

    if isinstance(engine, MemoryEngine | AsyncMemoryEngine):
        yield engine, {"tenant_id": tenant}
        return
    from mem_adapters.client import MemoryClient

    with MemoryClient(engine.base_url, token=token(tenant), backoff=0.05) as client:
        yield client, {}


def _skip_engine_only(request: pytest.FixtureRequest) -> None:
    marker = request.node.get_closest_marker("engine_only")
    if marker is not None:
        reason = marker.args[0] if marker.args else "needs an engine, not a service client"
        pytest.skip(f"engine only: {reason}")


@pytest.fixture(scope="session")
def adapter_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The real service the ``client`` variants talk to."""
    yield shared_server(tmp_path_factory)
    stop_shared_server()


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Any, embedder: Any) -> Iterator[Any]:
    """A fresh embedded engine, or a client of the service in a fresh tenant."""
    if request.param == "engine":
        from mem_adapters import MemoryEngine

        eng = MemoryEngine(tmp_path / "store", embedder=embedder)
        yield eng
        eng.close()
        return
    _skip_engine_only(request)
    client = client_for(request.getfixturevalue("adapter_service"))
    yield client
    client.close()


@pytest.fixture(params=BACKENDS)
async def aengine(request: pytest.FixtureRequest, tmp_path: Any, embedder: Any) -> AsyncIterator[Any]:
    """A fresh embedded async engine, or an async client of the service in a fresh tenant."""
    if request.param == "engine":
        from mem_adapters import AsyncMemoryEngine

        eng = AsyncMemoryEngine(tmp_path / "astore", embedder=embedder)
        yield eng
        await eng.aclose()
        return
    _skip_engine_only(request)
    client = client_for(request.getfixturevalue("adapter_service"), sync=False)
    yield client
    await client.aclose()


@pytest.fixture
def backend(engine: Any) -> str:
    """``"engine"`` or ``"client"``: which backend this test runs on."""
    from mem_adapters import AsyncMemoryEngine, MemoryEngine

    return "engine" if isinstance(engine, MemoryEngine | AsyncMemoryEngine) else "client"


def register_marker(config: pytest.Config) -> None:
    """Register ``engine_only`` (the suites run with ``--strict-markers``)."""
    config.addinivalue_line("markers", "engine_only(reason): the test needs an engine, not a service client")
