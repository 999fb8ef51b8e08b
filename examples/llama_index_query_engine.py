"""mem-adapters memories as a LlamaIndex retriever inside a RetrieverQueryEngine (offline).

Run: MEM_ADAPTERS_MODEL_DIR=/path/to/all-MiniLM-L6-v2/onnx python examples/llama_index_query_engine.py
MockLLM echoes its prompt, so the printed answer shows the retrieved context; swap in a real LLM.
"""

from __future__ import annotations

import tempfile

from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.memory.mem_adapters import MemAdaptersRetriever

from mem_adapters import MemoryEngine


def main() -> None:
    with tempfile.TemporaryDirectory() as folder, MemoryEngine(folder) as engine:
        engine.remember(
            [
                {"role": "user", "text": "I adopted a greyhound named Comet last spring"},
                {"role": "assistant", "text": "Congratulations on adopting Comet!"},
                {"role": "user", "text": "I'm vegetarian, so no fish or meat for me"},
            ],
            session_id="chat-1",
            user_id="alice",
        )
        engine.add(raw_text="Alice's dog Comet needs a walk twice a day.", user_id="alice")

        retriever = MemAdaptersRetriever(engine, user_id="alice", similarity_top_k=3)
        for hit in retriever.retrieve("Tell me about my pet"):
            md = hit.node.metadata
            print(f"{hit.score:.3f} [{md['kind']}/{md['role']}] {hit.node.get_content()}")

        query_engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM())
        response = query_engine.query("What is my dog called?")
        print("\nsource nodes:", [n.node.get_content() for n in response.source_nodes])


if __name__ == "__main__":
    main()
