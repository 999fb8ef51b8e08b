"""Embedders: one small protocol, the default ONNX all-MiniLM-L6-v2 runner, and adapters.

The default runs the model with onnxruntime + tokenizers (both chromadb dependencies) and
matches sentence-transformers' output: mean pooling over the attention mask, L2-normalised,
truncation at 256 tokens. Each batch is padded only to its longest text.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .errors import MemAdaptersError, ModelNotFoundError

logger = logging.getLogger(__name__)

MODEL_NAME = "all-MiniLM-L6-v2"
MODEL_DIR_ENV = "MEM_ADAPTERS_MODEL_DIR"
CHROMA_CACHE_DIR = Path.home() / ".cache" / "chroma" / "onnx_models" / MODEL_NAME / "onnx"
_REQUIRED_FILES = ("model.onnx", "tokenizer.json")
_REMEDIES = (
    "Provide it in one of three ways: (1) pass model_dir=... (or OnnxMiniLMEmbedder(model_dir=...)); "
    f"(2) set {MODEL_DIR_ENV} to a folder holding model.onnx and tokenizer.json; (3) put Chroma's "
    f"model files in {CHROMA_CACHE_DIR} (Chroma downloads them there when online)."
)


@runtime_checkable
class Embedder(Protocol):
    """What the engine needs from an embedding model."""

    @property
    def identity(self) -> str:
        """A stable string naming the model; stored with each collection."""
        ...

    @property
    def dimension(self) -> int:
        """Length of the vectors."""
        ...

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed texts to store."""
        ...

    def embed_query(self, text: str) -> list[float]:
        """Embed a search query."""
        ...


def count_tokens(embedder: Any, texts: Sequence[str]) -> int:
    """Count tokens with the embedder's tokenizer when it has one, else by whitespace."""
    counter = getattr(embedder, "count_tokens", None)
    if callable(counter):
        return int(counter(texts))
    return sum(len(t.split()) for t in texts)


def resolve_model_dir(model_dir: str | os.PathLike[str] | None = None, *, download: bool = True) -> Path:
    """Find the all-MiniLM-L6-v2 ONNX files.

    Order: the explicit ``model_dir``; ``$MEM_ADAPTERS_MODEL_DIR``; Chroma's cache
    (``~/.cache/chroma/onnx_models/all-MiniLM-L6-v2/onnx``); Chroma's own downloader.

    Raises:
        ModelNotFoundError: none of these yields the files; the message names the remedies.
    """
    tried: list[str] = []
    for label, candidate in (
        ("model_dir", model_dir),
        (MODEL_DIR_ENV, os.environ.get(MODEL_DIR_ENV)),
    ):
        if candidate:
            path = Path(candidate).expanduser()
            if all((path / f).is_file() for f in _REQUIRED_FILES):
                return path
            # An explicit location that is wrong is an error, not a reason to fall back silently.
            raise ModelNotFoundError(
                f"{label}={str(path)!r} does not contain {', '.join(_REQUIRED_FILES)} "
                f"of the {MODEL_NAME} ONNX export. {_REMEDIES}"
            )
    if all((CHROMA_CACHE_DIR / f).is_file() for f in _REQUIRED_FILES):
        return CHROMA_CACHE_DIR
    tried.append(f"Chroma's cache {CHROMA_CACHE_DIR}")
    if download:
        try:
            from chromadb.utils.embedding_functions.onnx_mini_lm_l6_v2 import ONNXMiniLM_L6_V2

            ONNXMiniLM_L6_V2()._download_model_if_not_exists()
            if all((CHROMA_CACHE_DIR / f).is_file() for f in _REQUIRED_FILES):
                return CHROMA_CACHE_DIR
        except Exception as e:  # network down, permissions, chromadb internals changed
            tried.append(f"Chroma's downloader ({type(e).__name__}: {e})")
    raise ModelNotFoundError(f"The {MODEL_NAME} ONNX model was not found ({'; '.join(tried)}). {_REMEDIES}")


class OnnxMiniLMEmbedder:
    """all-MiniLM-L6-v2 run with onnxruntime + tokenizers; vectors equal sentence-transformers'.

    Args:
        model_dir: Folder with ``model.onnx`` and ``tokenizer.json``; see :func:`resolve_model_dir`.
        batch_size: Texts per ONNX run; each batch is padded to its own longest text.
        max_length: Token truncation length (256, as sentence-transformers).
        threads: onnxruntime intra-op threads (``None`` lets onnxruntime decide).

    Example:
        >>> emb = OnnxMiniLMEmbedder()  # doctest: +SKIP
        >>> len(emb.embed_query("hello"))  # doctest: +SKIP
        384
    """

    def __init__(
        self,
        model_dir: str | os.PathLike[str] | None = None,
        *,
        batch_size: int = 32,
        max_length: int = 256,
        threads: int | None = None,
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.model_dir = resolve_model_dir(model_dir)
        self.batch_size = batch_size
        self.max_length = max_length
        tok = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
        tok.enable_truncation(max_length=max_length)
        tok.no_padding()  # we pad per batch ourselves, to the batch's longest text
        self._tokenizer = tok
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        # onnxruntime's intra-op threads spin between the model's parallel steps, and by
        # default for a while after each run too. Without spinning, each step waits for a
        # woken thread while the search works beside it (LoCoMo p50 23.4 against 14.6 ms);
        # spinning on after a run takes the cores from the scoring that follows the query
        # embedding (large partitions). So they spin during a run and stop when it returns
        # (the figures are in benchmarks/SCALE.md).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1")
        opts.add_session_config_entry("session.force_spinning_stop", "1")
        self._session = ort.InferenceSession(
            str(self.model_dir / "model.onnx"),
            sess_options=opts,
            providers=["CPUExecutionProvider"],
        )
        self._input_names = {i.name for i in self._session.get_inputs()}
        self._lock = threading.Lock()  # onnxruntime runs are thread-safe; tokenizer config is not
        digest = hashlib.sha256((self.model_dir / "model.onnx").read_bytes()).hexdigest()[:12]
        self._identity = f"onnx:{MODEL_NAME}:{digest}:max{max_length}"

    @property
    def identity(self) -> str:
        """Model name, a digest of the weights and the truncation length."""
        return self._identity

    @property
    def dimension(self) -> int:
        """384 for all-MiniLM-L6-v2."""
        return 384

    def count_tokens(self, texts: Sequence[str]) -> int:
        """Number of tokens the model sees for ``texts`` (after truncation, with specials)."""
        if not texts:
            return 0
        return sum(len(e.ids) for e in self._tokenizer.encode_batch(list(texts)))

    def _run(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(texts), width), dtype=np.int64)
        mask = np.zeros((len(texts), width), dtype=np.int64)
        types = np.zeros((len(texts), width), dtype=np.int64)
        for row, enc in enumerate(encodings):
            n = len(enc.ids)
            ids[row, :n] = enc.ids
            mask[row, :n] = enc.attention_mask
            types[row, :n] = enc.type_ids
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        feeds = {k: v for k, v in feeds.items() if k in self._input_names}
        hidden = self._session.run(None, feeds)[0]
        m = mask[:, :, None].astype(np.float32)
        pooled = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.clip(norms, 1e-12, None)

    def embed_array(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` into a float32 array of shape ``(len(texts), 384)``."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        # Sort by length so each batch pads to similar lengths; restore the order after.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            out[idx] = self._run([texts[i] for i in idx])
        return out

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed texts to store."""
        return self.embed_array(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        """Embed a search query."""
        return self.embed_array([text])[0].tolist()


class _Adapter:
    """Shared plumbing of the framework adapters: identity and lazily probed dimension."""

    def __init__(self, inner: Any, identity: str | None, dimension: int | None) -> None:
        self.inner = inner
        self._identity = identity or f"{type(inner).__module__}.{type(inner).__qualname__}"
        self._dimension = dimension

    @property
    def identity(self) -> str:
        """Caller-given identity, else the wrapped class's dotted name."""
        return self._identity

    @property
    def dimension(self) -> int:
        """Vector length, probed once by embedding a short text when not given."""
        if self._dimension is None:
            self._dimension = len(self.embed_query("dimension probe"))
        return self._dimension

    def embed_query(self, text: str) -> list[float]:
        """Embed a search query."""
        return self.embed_documents([text])[0]

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed texts to store."""
        raise NotImplementedError


class ChromaEmbedder(_Adapter):
    """Adapts a Chroma ``EmbeddingFunction`` (called with a list of texts)."""

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed texts to store."""
        return [np.asarray(v, dtype=np.float32).tolist() for v in self.inner(list(texts))]

    def embed_query(self, text: str) -> list[float]:
        """Embed a query (with the function's ``embed_query`` when it has one)."""
        fn = getattr(self.inner, "embed_query", None)
        if callable(fn):
            return np.asarray(fn([text])[0], dtype=np.float32).tolist()
        return self.embed_documents([text])[0]


class LangChainEmbedder(_Adapter):
    """Adapts a LangChain ``Embeddings`` (``embed_documents``/``embed_query``)."""

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed texts to store."""
        return [list(map(float, v)) for v in self.inner.embed_documents(list(texts))]

    def embed_query(self, text: str) -> list[float]:
        """Embed a search query."""
        return list(map(float, self.inner.embed_query(text)))


class LlamaIndexEmbedder(_Adapter):
    """Adapts a LlamaIndex ``BaseEmbedding`` (batch text and query embedding methods)."""

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed texts to store."""
        return [list(map(float, v)) for v in self.inner.get_text_embedding_batch(list(texts))]

    def embed_query(self, text: str) -> list[float]:
        """Embed a search query."""
        return list(map(float, self.inner.get_query_embedding(text)))


def as_embedder(
    obj: Any = None, *, model_dir: str | os.PathLike[str] | None = None, identity: str | None = None
) -> Any:
    """Turn ``obj`` into an :class:`Embedder`, duck-typed so no framework is imported.

    ``None`` gives the default :class:`OnnxMiniLMEmbedder`; an object with ``identity``,
    ``dimension``, ``embed_documents`` and ``embed_query`` is used as is; a LlamaIndex
    ``BaseEmbedding``, a LangChain ``Embeddings`` or a Chroma ``EmbeddingFunction`` is wrapped.

    Raises:
        MemAdaptersError: ``obj`` is none of these.
    """
    if obj is None:
        return OnnxMiniLMEmbedder(model_dir)
    if isinstance(obj, Embedder):
        return obj
    if hasattr(obj, "get_text_embedding_batch") and hasattr(obj, "get_query_embedding"):
        return LlamaIndexEmbedder(obj, identity, None)
    if hasattr(obj, "embed_documents") and hasattr(obj, "embed_query"):
        return LangChainEmbedder(obj, identity, None)
    if callable(obj):
        return ChromaEmbedder(obj, identity, None)
    raise MemAdaptersError(
        f"embedder {type(obj).__name__} is not an Embedder, a LangChain Embeddings, a LlamaIndex "
        "BaseEmbedding nor a Chroma EmbeddingFunction"
    )
