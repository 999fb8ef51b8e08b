"""A LangGraph agent with MemAdaptersStore as long-term memory, fully offline.

Facts saved in one thread are recalled in another; namespace ("memories", user) is mapped
onto the engine's user scope. A fake chat model stands in for an LLM.

Run: MEM_ADAPTERS_MODEL_DIR=../shared/models/all-MiniLM-L6-v2/onnx python examples/langchain_agent_store.py
"""

import tempfile
import uuid

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langchain_mem_adapters import MemAdaptersStore
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.store.base import BaseStore

from mem_adapters import MemoryEngine

model = GenericFakeChatModel(messages=iter(["Got it.", "Order the mushroom risotto, not the prawns."]))


def call_model(state: MessagesState, config: RunnableConfig, *, store: BaseStore) -> dict:
    namespace = ("memories", config["configurable"]["user_id"])
    text = state["messages"][-1].text
    if text.lower().startswith("remember:"):
        store.put(namespace, uuid.uuid4().hex, {"text": text.split(":", 1)[1].strip()})
    memories = store.search(namespace, query=text, limit=3)
    system = SystemMessage("What you know about the user:\n" + "\n".join(m.value["text"] for m in memories))
    print(f"[{config['configurable']['thread_id']}] {system.text!r}")
    return {"messages": [model.invoke([system, *state["messages"]])]}


with MemoryEngine(tempfile.mkdtemp(prefix="mem-adapters-")) as engine:
    store = MemAdaptersStore(engine, scopes={"user_id": 1})
    graph = (
        StateGraph(MessagesState)
        .add_node("call_model", call_model)
        .add_edge(START, "call_model")
        .compile(checkpointer=InMemorySaver(), store=store)
    )
    graph.invoke(
        {"messages": [HumanMessage("Remember: I am allergic to shellfish")]},
        {"configurable": {"thread_id": "monday", "user_id": "dana"}},
    )
    out = graph.invoke(
        {"messages": [HumanMessage("What should I order at the seafood place?")]},
        {"configurable": {"thread_id": "friday", "user_id": "dana"}},
    )
    print("answer:", out["messages"][-1].text)
    print("namespaces:", store.list_namespaces())
