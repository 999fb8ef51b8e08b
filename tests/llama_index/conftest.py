"""Fixtures of the LlamaIndex integration tests (the root conftest provides ``engine``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("llama_index.memory.mem_adapters")

from llama_index.memory.mem_adapters import close_shared_engines


@pytest.fixture(autouse=True)
def _close_shared() -> Iterator[None]:
    """Close engines created lazily by the adapters (e.g. after Context.from_dict)."""
    yield
    close_shared_engines()
