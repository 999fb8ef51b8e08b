"""Record a conversation in the embedded store and recall it (offline).

Run: MEM_ADAPTERS_MODEL_DIR=../shared/models/all-MiniLM-L6-v2/onnx python examples/quickstart.py
"""

import tempfile

from mem_adapters import MemoryEngine

with MemoryEngine(tempfile.mkdtemp(prefix="mem-adapters-")) as engine:
    engine.remember(
        [
            {"role": "user", "text": "I'm allergic to shellfish.", "timestamp": "2025-03-01T09:00:00Z"},
            {"role": "assistant", "text": "Noted - no shellfish.", "timestamp": "2025-03-01T09:00:04Z"},
        ],
        session_id="chat-1",
        user_id="dana",
    )
    hits = engine.search("What food should I avoid?", user_id="dana", k=3)
    print("best hit:", hits.results[0].text)
    print(engine.search("food?", user_id="dana", mode="context", char_budget=200).context)
    print("transcript:", [t.text for t in engine.get_messages("chat-1")])
    engine.add(raw_text="Dana's partner is Sam.", user_id="dana", memory_id="partner")
    engine.update("partner", text="Dana's partner is Sam; they married in 2024.")
    print("history:", [h.event for h in engine.history("partner")])
    print("erased:", engine.erase(user_id="dana"))
