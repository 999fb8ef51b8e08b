"""Scores you can read: every hit carries ScoreParts, and each part means what it says."""

from __future__ import annotations

import numpy as np

TURNS = [
    ("user", "I'm allergic to shellfish, so no prawns please.", "2025-03-01T09:00:00Z"),
    ("assistant", "Noted - no shellfish in any suggestion.", "2025-03-01T09:00:04Z"),
    ("user", "On weekends I go hiking along the coast near Sintra.", "2025-03-02T09:00:00Z"),
    ("user", "My sister Ana lives in Porto and paints boats.", "2025-03-03T09:00:00Z"),
]


async def test_every_hit_has_score_parts_that_mean_what_they_say(aengine, embedder):
    await aengine.remember(
        [{"role": r, "text": t, "timestamp": ts} for r, t, ts in TURNS], session_id="s", user_id="dana"
    )
    res = await aengine.search("shellfish allergy", user_id="dana", k=4)
    assert res.results
    q = np.asarray(embedder.embed_query("shellfish allergy"), dtype=np.float32)
    mem, _ = await aengine.collections("default")
    got = await mem.get(ids=[h.id for h in res.results], include=["embeddings"])
    vectors = dict(zip(got["ids"], got["embeddings"], strict=True))
    for hit in res.results:
        parts = hit.score_parts
        assert parts is not None and parts.fused == hit.score  # score stays the fused ranking value
        v = np.asarray(vectors[hit.id], dtype=np.float32)
        cosine = float(v @ q / (np.linalg.norm(v) * np.linalg.norm(q)))
        assert parts.cosine is not None and abs(parts.cosine - cosine) < 1e-4
    top = res.results[0]
    assert top.text.startswith("I'm allergic")
    assert top.score_parts.lexical > 0  # "shellfish" matched
    others = [h for h in res.results if "shellfish" not in h.text.lower()]
    assert others and all(h.score_parts.lexical == 0.0 for h in others)
    # The first-person boost is named where it applied ("I" questions lift the user's turns).
    mine = await aengine.search("where do I go hiking?", user_id="dana", k=2)
    assert mine.results[0].score_parts.boosts.get("speaker") == 1.0
    assert [h.score for h in res.results] == sorted((h.score for h in res.results), reverse=True)


async def test_reads_have_no_score_parts(aengine):
    w = await aengine.remember([{"role": "user", "text": "plain"}], session_id="s")
    item = await aengine.get(w.active_ids[0])
    assert item.score is None and item.score_parts is None
