"""MemAdaptersMemory as ``memory=`` of FunctionAgent, AgentWorkflow and ReActAgent runs.

The LLM is LlamaIndex's ``MockFunctionCallingLLM`` with a scripted response generator: it
calls the ``lookup`` tool once per user message, then answers, and records what it was shown.
"""

from __future__ import annotations

from typing import Any

import pytest
from llama_index.core.agent.workflow import AgentWorkflow, FunctionAgent, ReActAgent
from llama_index.core.base.llms.types import ChatMessage, MessageRole, TextBlock, ToolCallBlock
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.memory import ChatMemoryBuffer
from llama_index.core.tools import FunctionTool
from llama_index.core.workflow import Context
from llama_index.memory.mem_adapters import MemAdaptersMemory, is_memory_message


def lookup(query: str) -> str:
    """Look up a fact about the user's account."""
    return f"record for {query}: plan=gold"


class Script:
    """Response generator: tool call first, then an answer; keeps every prompt it saw."""

    def __init__(self, react: bool = False) -> None:
        self.react = react
        self.prompts: list[list[ChatMessage]] = []

    def __call__(self, messages: list[ChatMessage], **kwargs: Any) -> ChatMessage:
        self.prompts.append(list(messages))
        last_user = max(i for i, m in enumerate(messages) if m.role == MessageRole.USER)
        after = messages[last_user + 1 :]
        if self.react:
            if "Observation:" in (messages[-1].content or "") or any(
                "Observation:" in (m.content or "") for m in after
            ):
                return ChatMessage(
                    role="assistant", content="Thought: I can answer.\nAnswer: your plan is gold"
                )
            return ChatMessage(
                role="assistant",
                content='Thought: I need the record.\nAction: lookup\nAction Input: {"query": "alice"}',
            )
        if any(m.role == MessageRole.TOOL for m in after):
            tool_text = next(m.content for m in after if m.role == MessageRole.TOOL)
            return ChatMessage(role="assistant", content=f"Answer from tool: {tool_text}")
        return ChatMessage(
            role="assistant",
            blocks=[ToolCallBlock(tool_call_id=f"call-{len(self.prompts)}", tool_name="lookup",
                                  tool_kwargs={"query": "alice"})],
        )  # fmt: skip


def seed(engine) -> None:
    MemAdaptersMemory.from_defaults(engine=engine, user_id="alice", session_id="earlier").put(
        ChatMessage(role="user", content="My favourite colour is teal")
    )


def function_agent(script: Script) -> FunctionAgent:
    return FunctionAgent(
        name="helper", description="Answers account questions.", tools=[FunctionTool.from_defaults(lookup)],
        llm=MockFunctionCallingLLM(response_generator=script), system_prompt="Be brief.",
    )  # fmt: skip


def assert_tool_round_trip(stored: list[ChatMessage], question: str) -> None:
    roles = [m.role.value for m in stored]
    assert roles == ["user", "assistant", "tool", "assistant"]
    assert stored[0].content == question
    call = next(b for b in stored[1].blocks if isinstance(b, ToolCallBlock))
    assert (call.tool_name, call.tool_kwargs) == ("lookup", {"query": "alice"})
    assert stored[2].additional_kwargs["tool_call_id"] == call.tool_call_id
    assert stored[2].content == "record for alice: plan=gold"
    assert stored[3].content == "Answer from tool: record for alice: plan=gold"


async def test_function_agent_run_with_tool_call(engine):
    seed(engine)
    script = Script()
    memory = MemAdaptersMemory.from_defaults(engine=engine, user_id="alice", session_id="fa")
    agent = function_agent(script)
    result = await agent.run("What colour do I like, and what's my plan?", memory=memory)
    assert "plan=gold" in str(result)
    stored = await memory.aget_all()
    assert_tool_round_trip(stored, "What colour do I like, and what's my plan?")
    # The first prompt carried the recalled memory; it was never stored.
    assert any(is_memory_message(m) and "teal" in m.content for m in script.prompts[0])
    assert not any(is_memory_message(m) for m in stored)
    # The agent used our (empty at start) memory, not a default buffer.
    assert engine.count_turns("fa") == 4


async def test_function_agent_second_run_sees_history(engine):
    script = Script()
    memory = MemAdaptersMemory.from_defaults(engine=engine, user_id="alice", session_id="fa2")
    agent = function_agent(script)
    await agent.run("first question", memory=memory)
    await agent.run("second question", memory=memory)
    assert [m.content for m in await memory.aget_all() if m.role == MessageRole.USER] == [
        "first question", "second question"]  # fmt: skip
    last_prompt = script.prompts[-1]
    assert any(m.content == "first question" for m in last_prompt)


async def test_agent_workflow_run(engine):
    seed(engine)
    script = Script()
    memory = MemAdaptersMemory.from_defaults(engine=engine, user_id="alice", session_id="wf")
    workflow = AgentWorkflow(agents=[function_agent(script)], root_agent="helper")
    result = await workflow.run(user_msg="What's my plan?", memory=memory)
    assert "plan=gold" in str(result)
    assert_tool_round_trip(await memory.aget_all(), "What's my plan?")
    assert any(is_memory_message(m) and "teal" in m.content for m in script.prompts[0])


async def test_react_agent_run(engine):
    seed(engine)
    script = Script(react=True)
    # ReActAgent drops a leading system message from the history: inject into the user turn.
    memory = MemAdaptersMemory.from_defaults(
        engine=engine, user_id="alice", session_id="react", insert_method="user"
    )
    agent = ReActAgent(tools=[FunctionTool.from_defaults(lookup)],
                       llm=MockFunctionCallingLLM(response_generator=script))  # fmt: skip
    result = await agent.run("What's my plan?", memory=memory)
    assert "your plan is gold" in str(result)
    stored = await memory.aget_all()
    assert stored[0].content == "What's my plan?"
    assert stored[-1].role == MessageRole.ASSISTANT and "your plan is gold" in stored[-1].content
    shown_user = [m for m in script.prompts[0] if m.role == MessageRole.USER]
    assert "teal" in shown_user[-1].content and "What's my plan?" in shown_user[-1].content
    assert not any(is_memory_message(m) for m in stored)
    assert stored[0].content == "What's my plan?"


@pytest.mark.engine_only("restores the memory from the engine's folder; client: test_adapters_over_client.py")
async def test_context_round_trip_keeps_the_memory(engine):
    script = Script()
    agent = function_agent(script)
    memory = MemAdaptersMemory.from_defaults(engine=engine, user_id="alice", session_id="ctx")
    ctx = Context(agent)
    await agent.run("first question", memory=memory, ctx=ctx)
    data = ctx.to_dict()
    restored = Context.from_dict(agent, data)
    again = await restored.store.get("memory")
    assert isinstance(again, MemAdaptersMemory) and again is not memory
    assert (again.session_id, again.user_id, again.path) == ("ctx", "alice", str(engine.path))
    assert dump(await again.aget_all()) == dump(await memory.aget_all())
    # Resume without passing memory=: the restored one is used, not a fresh default buffer.
    await agent.run("second question", ctx=restored)
    assert engine.count_turns("ctx") == 8
    assert any(m.content == "first question" for m in script.prompts[-1])


async def test_empty_memory_is_not_replaced_by_default_buffer(engine):
    memory = MemAdaptersMemory.from_defaults(engine=engine, session_id="empty")
    agent = function_agent(Script())
    ctx = Context(agent)
    await agent.run("hello", memory=memory, ctx=ctx)
    used = await ctx.store.get("memory")
    assert used is memory and not isinstance(used, ChatMemoryBuffer)
    assert engine.count_turns("empty") == 4


def dump(messages: list[ChatMessage]) -> list[dict[str, Any]]:
    return [m.model_dump(mode="json") for m in messages]


def test_text_block_helper_sanity():
    # Guard for the script above: a ToolCallBlock-only message has no text content.
    m = ChatMessage(role="assistant", blocks=[ToolCallBlock(tool_call_id="x", tool_name="t", tool_kwargs={})])
    assert not any(isinstance(b, TextBlock) for b in m.blocks)
