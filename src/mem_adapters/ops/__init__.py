"""The engine's operations, one module per responsibility.

:class:`~mem_adapters.AsyncMemoryEngine` composes them:

- :mod:`.base` — state and plumbing: the store, the data layer, embedder executors.
- :mod:`.writes` — ``remember``, ``record_message``, ``add``.
- :mod:`.reads` — ``get``, ``list``, transcripts, sessions, tenants.
- :mod:`.history` — versions of a memory and supersession chains.
- :mod:`.changes` — status, updates, expiry, deletes, clearing a session.
- :mod:`.search` — the search façade and enrichment jobs.
- :mod:`.lifecycle` — erase, re-embedding, shutdown.

Storage goes through :mod:`mem_adapters.data` only.
"""
