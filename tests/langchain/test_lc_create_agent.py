"""MemAdaptersStore as the long-term memory of a LangChain 1.x ``create_agent`` agent.

The model is a scripted fake that emits tool calls; the tools reach the store through
``ToolRuntime.store`` (injected argument) and ``langgraph.config.get_store()``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from langchain.agents import create_agent
from langchain.tools import ToolRuntime
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool, tool
from langchain_mem_adapters import MemAdaptersStore
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.config import get_store


class ToolCallingFake(GenericFakeChatModel):
    """A scripted chat model that accepts ``bind_tools`` (create_agent binds the tools)."""

    seen: list[list[BaseMessage]] = []

    def bind_tools(self, tools: Sequence[dict[str, Any] | type | Callable | BaseTool], **kwargs: Any) -> Any:
        """Tools are ignored: the script already says which tool to call."""
        return self

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> Any:
        self.seen.append(list(messages))
        return super()._generate(messages, *args, **kwargs)

    async def _agenerate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> Any:
        self.seen.append(list(messages))
        return await super()._agenerate(messages, *args, **kwargs)


@tool
def save_memory(text: str, runtime: ToolRuntime) -> str:
    """Save a fact about the user for later conversations."""
    user = runtime.config["configurable"]["user_id"]
    runtime.store.put(("memories", user), f"m{len(runtime.store.search(('memories', user)))}", {"text": text})
    return "saved"


@tool
def recall(query: str, runtime: ToolRuntime) -> str:
    """Recall facts about the user relevant to a query."""
    user = runtime.config["configurable"]["user_id"]
    # get_store() must return the same store the agent was built with.
    assert get_store() is runtime.store
    hits = get_store().search(("memories", user), query=query, limit=3)
    return "\n".join(h.value["text"] for h in hits) or "nothing"


@tool
async def asave_memory(text: str, runtime: ToolRuntime) -> str:
    """Save a fact about the user (async tool)."""
    user = runtime.config["configurable"]["user_id"]
    await runtime.store.aput(("memories", user), "fact", {"text": text})
    return "saved"


@tool
async def arecall(query: str, runtime: ToolRuntime) -> str:
    """Recall facts about the user (async tool)."""
    user = runtime.config["configurable"]["user_id"]
    hits = await runtime.store.asearch(("memories", user), query=query, limit=3)
    return "\n".join(h.value["text"] for h in hits) or "nothing"


def _call(name: str, call_id: str, **args: Any) -> AIMessage:
    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": call_id, "type": "tool_call"}])


def _tool_results(messages: list[BaseMessage]) -> list[str]:
    return [m.text for m in messages if isinstance(m, ToolMessage)]


def test_create_agent_saves_and_recalls_across_threads(engine):
    store = MemAdaptersStore(engine, scopes={"user_id": 1})
    model = ToolCallingFake(
        messages=iter([
            _call("save_memory", "c1", text="I am allergic to shellfish"),
            "Noted.",
            _call("recall", "c2", query="what food should I avoid?"),
            "Avoid shellfish.",
        ])
    )  # fmt: skip
    model.seen = []
    agent = create_agent(model, tools=[save_memory, recall], store=store, checkpointer=InMemorySaver())
    first = agent.invoke(
        {"messages": [HumanMessage("Remember that I am allergic to shellfish")]},
        {"configurable": {"thread_id": "t1", "user_id": "u1"}},
    )
    assert _tool_results(first["messages"]) == ["saved"]
    # The tool's put landed in the engine, scoped to the user.
    assert [i.metadata["lg_value"] for i in engine.list(user_id="u1", kinds=["raw"]).results] == [
        {"text": "I am allergic to shellfish"}
    ]
    # A new thread starts with an empty conversation: only the store carries the fact over.
    second = agent.invoke(
        {"messages": [HumanMessage("What should I avoid at a seafood place?")]},
        {"configurable": {"thread_id": "t2", "user_id": "u1"}},
    )
    assert _tool_results(second["messages"]) == ["I am allergic to shellfish"]
    assert second["messages"][-1].text == "Avoid shellfish."
    assert len([m for m in second["messages"] if isinstance(m, HumanMessage)]) == 1
    # The model saw the recalled fact in the tool result before answering.
    assert "I am allergic to shellfish" in [m.text for m in model.seen[-1] if isinstance(m, ToolMessage)]


async def test_create_agent_async_tools_with_another_user(engine):
    store = MemAdaptersStore(engine, scopes={"user_id": 1})
    model = ToolCallingFake(
        messages=iter([
            _call("asave_memory", "c1", text="My favourite tea is oolong"),
            "Noted.",
            _call("arecall", "c2", query="which tea do I like?"),
            "Oolong.",
            _call("arecall", "c3", query="which tea do I like?"),
            "I don't know.",
        ])
    )  # fmt: skip
    model.seen = []
    agent = create_agent(model, tools=[asave_memory, arecall], store=store)
    u1 = {"configurable": {"user_id": "u1"}}
    await agent.ainvoke({"messages": [HumanMessage("I love oolong tea")]}, u1)
    out = await agent.ainvoke({"messages": [HumanMessage("Tea?")]}, u1)
    assert _tool_results(out["messages"]) == ["My favourite tea is oolong"]
    other = await agent.ainvoke({"messages": [HumanMessage("Tea?")]}, {"configurable": {"user_id": "u2"}})
    assert _tool_results(other["messages"]) == ["nothing"]
