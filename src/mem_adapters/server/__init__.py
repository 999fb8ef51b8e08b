"""The memory service: REST in the hosted APIs' shapes over :class:`~mem_adapters.AsyncMemoryEngine`.

Modules: :mod:`.app` (the FastAPI app), :mod:`.settings`, :mod:`.auth` (JWT and API keys,
tenancy), :mod:`.keys` (the hashed key file), :mod:`.shapes` (request/response models, the
contract), :mod:`.adapters` (engine models → shapes), :mod:`.errors` (the one error shape),
:mod:`.routers` (one router per resource). Needs the ``[server]`` extra.

Example:
    >>> from mem_adapters.server import ServerSettings, create_app
    >>> app = create_app(ServerSettings(jwt_secret="s3cret"))  # doctest: +SKIP
"""

from __future__ import annotations

from .app import create_app
from .auth import Authenticator, Principal
from .keys import create_key, load_keys
from .settings import DEFAULT_SESSION, ServerSettings

__all__ = [
    "DEFAULT_SESSION",
    "Authenticator",
    "Principal",
    "ServerSettings",
    "create_app",
    "create_key",
    "load_keys",
]
