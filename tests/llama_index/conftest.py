"""Fixtures of the LlamaIndex integration tests: every test runs on an engine and on the service."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("llama_index.memory.mem_adapters")

from adapter_backends import adapter_service, aengine, backend, engine, register_marker
from llama_index.memory.mem_adapters import close_shared_engines

__all__ = ["adapter_service", "aengine", "backend", "engine"]


def pytest_configure(config: pytest.Config) -> None:
    register_marker(config)


@pytest.fixture(autouse=True)
def _close_shared() -> Iterator[None]:
    """Close engines created lazily by the adapters (e.g. after Context.from_dict)."""
    yield
    close_shared_engines()
