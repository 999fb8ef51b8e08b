"""Embedder contract: real model parity, framework adapters, model discovery, mismatch, reembed."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from mem_adapters import (
    EmbedderMismatchError,
    MemAdaptersError,
    MemoryEngine,
    ModelNotFoundError,
    OnnxMiniLMEmbedder,
    as_embedder,
)

MODEL_DIR = Path(os.environ["MEM_ADAPTERS_MODEL_DIR"])  # conftest sets it as the engine resolves it
REFERENCE = json.loads(
    (Path(__file__).parent / "fixtures" / "all-MiniLM-L6-v2-reference-vectors.json").read_text()
)
TS = datetime(2025, 1, 1, tzinfo=timezone.utc).isoformat()


def cosine(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# ---------------------------------------------------------------- default model


def test_reference_vectors_match_sentence_transformers(embedder):
    got = embedder.embed_documents(REFERENCE["sentences"])
    assert len(got) == len(REFERENCE["vectors"]) == 6
    for sentence, mine, ref in zip(REFERENCE["sentences"], got, REFERENCE["vectors"], strict=True):
        assert len(mine) == 384
        assert cosine(mine, ref) >= 0.9999, sentence
        assert np.linalg.norm(mine) == pytest.approx(1.0, abs=1e-4)


def test_query_embedding_equals_document_embedding(embedder):
    for sentence, ref in zip(REFERENCE["sentences"], REFERENCE["vectors"], strict=True):
        assert cosine(embedder.embed_query(sentence), ref) >= 0.9999


def test_batching_does_not_change_vectors(embedder):
    # Mixed lengths in one batch pad short texts; padding must not leak into the mean.
    alone = [embedder.embed_query(s) for s in REFERENCE["sentences"]]
    batched = embedder.embed_documents(REFERENCE["sentences"][::-1])[::-1]
    for a, b in zip(alone, batched, strict=True):
        assert cosine(a, b) >= 0.99999


def test_engine_uses_real_model_from_env_dir(tmp_path):
    import chromadb

    env_dir = os.environ["MEM_ADAPTERS_MODEL_DIR"]
    client = chromadb.PersistentClient(path=str(tmp_path / "db"))
    with MemoryEngine(client=client) as eng:
        assert isinstance(eng.embedder, OnnxMiniLMEmbedder)
        assert Path(eng.embedder.model_dir).resolve() == Path(env_dir).resolve()
        for sentence, ref in zip(REFERENCE["sentences"], REFERENCE["vectors"], strict=True):
            assert cosine(eng.embedder.embed_query(sentence), ref) >= 0.9999
        # The vectors the engine stores in Chroma are the model's (raw memories embed their text).
        ids = [eng.add(raw_text=s).memory_id for s in REFERENCE["sentences"][:4]]
        (col,) = [c for c in client.list_collections() if c.name.endswith("-mem")]
        got = client.get_collection(col.name).get(ids=ids, include=["embeddings"])
        stored = dict(zip(got["ids"], got["embeddings"], strict=True))
        for mid, ref in zip(ids, REFERENCE["vectors"][:4], strict=True):
            assert cosine(stored[mid], ref) >= 0.9999


def test_token_count_uses_model_tokenizer(embedder):
    # all-MiniLM's WordPiece: [CLS] + pieces + [SEP]; whitespace splitting would give 2.
    assert embedder.count_tokens(["hello world"]) == 4
    assert embedder.count_tokens(["unbelievably"]) > 3


# ---------------------------------------------------------------- missing model


def test_missing_model_names_three_remedies(tmp_path):
    empty = tmp_path / "empty-model-dir"
    empty.mkdir()
    with pytest.raises(ModelNotFoundError) as e:
        OnnxMiniLMEmbedder(model_dir=empty)
    msg = str(e.value)
    assert isinstance(e.value, MemAdaptersError)
    assert str(empty) in msg
    assert "model_dir" in msg
    assert "MEM_ADAPTERS_MODEL_DIR" in msg
    assert "chroma" in msg.lower() and "cache" in msg.lower()


def test_missing_model_through_engine(tmp_path):
    empty = tmp_path / "empty-model-dir"
    empty.mkdir()
    with pytest.raises(ModelNotFoundError) as e:
        MemoryEngine(tmp_path / "db", model_dir=empty)
    msg = str(e.value)
    assert "MEM_ADAPTERS_MODEL_DIR" in msg and "model_dir" in msg


# ---------------------------------------------------------------- framework adapters


def _roundtrip(engine: MemoryEngine) -> None:
    texts = ["I'm allergic to shellfish.", "My sister lives in Oslo.", "I play the cello on Sundays."]
    res = engine.remember(
        [{"role": "user", "text": t, "timestamp": TS} for t in texts], session_id="s", user_id="u"
    )
    assert [m.text for m in engine.get_messages("s")] == texts
    for tid, text in zip(res.active_ids, texts, strict=True):
        assert engine.search(text, session_id="s", k=3).results[0].id == tid


def test_langchain_embeddings_adapter(tmp_path):
    from langchain_core.embeddings import DeterministicFakeEmbedding

    fake = DeterministicFakeEmbedding(size=32)
    with MemoryEngine(tmp_path / "db", embedder=fake) as eng:
        assert eng.embedder.dimension == 32
        _roundtrip(eng)


def test_llamaindex_embedding_adapter(tmp_path):
    from llama_index.core.embeddings import MockEmbedding

    mock = MockEmbedding(embed_dim=16)
    with MemoryEngine(tmp_path / "db", embedder=mock) as eng:
        assert eng.embedder.dimension == 16
        res = eng.remember([{"role": "user", "text": "hello there", "timestamp": TS}], session_id="s")
        # MockEmbedding gives every text the same vector, so only presence can be checked.
        assert eng.search("anything", session_id="s").results[0].id == res.active_ids[0]
        assert [m.text for m in eng.get_messages("s")] == ["hello there"]


class HashEmbeddingFunction:
    """A Chroma EmbeddingFunction: deterministic bag-of-words hashing vectors."""

    def __init__(self) -> None:
        pass

    def __call__(self, input):
        out = []
        for text in input:
            v = np.zeros(64, dtype=np.float32)
            for word in text.lower().split():
                v[hash(word) % 64] += 1.0
            out.append((v / max(np.linalg.norm(v), 1e-9)).tolist())
        return out


def test_chroma_embedding_function_adapter(tmp_path):
    from chromadb.api.types import EmbeddingFunction

    class EF(HashEmbeddingFunction, EmbeddingFunction):
        pass

    with MemoryEngine(tmp_path / "db", embedder=EF()) as eng:
        assert eng.embedder.dimension == 64
        _roundtrip(eng)


def test_chromas_own_onnx_function_matches_default(tmp_path, embedder):
    """Chroma's ONNXMiniLM_L6_V2 reading the same model files through the adapter: same vectors."""
    from chromadb.utils.embedding_functions.onnx_mini_lm_l6_v2 import ONNXMiniLM_L6_V2

    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "onnx").symlink_to(MODEL_DIR)

    class LocalONNX(ONNXMiniLM_L6_V2):
        DOWNLOAD_PATH = tmp_path / "cache"

    adapted = as_embedder(LocalONNX(preferred_providers=["CPUExecutionProvider"]))
    assert adapted.dimension == 384
    ref = REFERENCE["vectors"][0]
    assert cosine(adapted.embed_query(REFERENCE["sentences"][0]), ref) >= 0.9999
    with MemoryEngine(tmp_path / "db", embedder=adapted) as eng:
        _roundtrip(eng)


def test_unusable_embedder_object_is_a_clear_error(tmp_path):
    with pytest.raises(MemAdaptersError):
        as_embedder(object())


# ---------------------------------------------------------------- mismatch and migration


def test_reopen_with_different_embedder_raises_mismatch(tmp_path, embedder):
    from langchain_core.embeddings import DeterministicFakeEmbedding

    with MemoryEngine(tmp_path / "db", embedder=embedder) as eng:
        eng.remember([{"role": "user", "text": "hello", "timestamp": TS}], session_id="s")
    with MemoryEngine(tmp_path / "db", embedder=DeterministicFakeEmbedding(size=384)) as eng:
        with pytest.raises(EmbedderMismatchError) as e:
            eng.search("hello", session_id="s")
        assert "reembed" in str(e.value)
        with pytest.raises(EmbedderMismatchError):
            eng.remember([{"role": "user", "text": "more", "timestamp": TS}], session_id="s")
        with pytest.raises(EmbedderMismatchError):
            eng.get_messages("s")
    # The original embedder still reads the untouched data.
    with MemoryEngine(tmp_path / "db", embedder=embedder) as eng:
        assert [m.text for m in eng.get_messages("s")] == ["hello"]


def _seed(eng: MemoryEngine) -> list[str]:
    texts = ["I'm allergic to shellfish.", "My sister lives in Oslo.", "I play the cello on Sundays."]
    ids = eng.remember(
        [{"role": "user", "text": t, "timestamp": TS} for t in texts], session_id="s"
    ).active_ids
    eng.add(raw_text="The spare key is under the blue flowerpot.", tenant_id="other")
    return ids


def test_reembed_from_old_engine_migrates(tmp_path, embedder):
    from langchain_core.embeddings import DeterministicFakeEmbedding

    new = DeterministicFakeEmbedding(size=48)
    with MemoryEngine(tmp_path / "db", embedder=embedder) as eng:
        ids = _seed(eng)
        n = eng.reembed(new)
        assert n == 4
        assert eng.embedder.dimension == 48
        assert [m.id for m in eng.get_messages("s")] == ids
        for tid, text in zip(ids, [eng.get(i).text for i in ids], strict=True):
            assert eng.search(text, session_id="s", k=1).results[0].id == tid
    # Reopening with the new embedder works; with the old one is a mismatch.
    with MemoryEngine(tmp_path / "db", embedder=DeterministicFakeEmbedding(size=48)) as eng:
        assert [m.id for m in eng.get_messages("s")] == ids
        assert eng.search("The spare key is under the blue flowerpot.", tenant_id="other").results
    with MemoryEngine(tmp_path / "db", embedder=embedder) as eng, pytest.raises(EmbedderMismatchError):
        eng.get_messages("s")


def test_reembed_after_mismatch_on_new_engine(tmp_path, embedder):
    """The mismatch message's remedy: open with the new embedder, call reembed(), then search."""
    from langchain_core.embeddings import DeterministicFakeEmbedding

    with MemoryEngine(tmp_path / "db", embedder=embedder) as eng:
        ids = _seed(eng)
    new = DeterministicFakeEmbedding(size=48)
    with MemoryEngine(tmp_path / "db", embedder=new) as eng:
        with pytest.raises(EmbedderMismatchError):
            eng.get_messages("s")
        assert eng.reembed(new) == 4
        assert [m.id for m in eng.get_messages("s")] == ids
        text = eng.get(ids[1]).text
        assert eng.search(text, session_id="s", k=1).results[0].id == ids[1]


def test_onnx_threads_do_not_spin_after_a_run(embedder):
    # Intra-op threads spin during a run (without it each step waits for a woken thread) and
    # stop when it returns, leaving the cores to the scoring that follows (benchmarks/SCALE.md).
    opts = embedder._session.get_session_options()
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "1"
    assert opts.get_session_config_entry("session.force_spinning_stop") == "1"
