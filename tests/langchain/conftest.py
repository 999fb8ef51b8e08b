"""Fixtures of the LangChain adapter tests: every test runs on an engine and on the service."""

from __future__ import annotations

import pytest

pytest.importorskip("langchain_mem_adapters")

from adapter_backends import adapter_service, aengine, backend, engine, register_marker

__all__ = ["adapter_service", "aengine", "backend", "engine"]


def pytest_configure(config: pytest.Config) -> None:
    register_marker(config)
