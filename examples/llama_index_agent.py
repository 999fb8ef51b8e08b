"""A LlamaIndex FunctionAgent whose memory lives in mem-adapters (offline, scripted mock LLM).

Run: MEM_ADAPTERS_MODEL_DIR=/path/to/all-MiniLM-L6-v2/onnx python examples/llama_index_agent.py

The first session tells the agent a preference; a later session (same user, new session id)
gets it back as a recalled memory, and the Context is saved and restored in between.
Replace ``MockFunctionCallingLLM`` with a real function-calling LLM in an application.
"""

from __future__ import annotations

import asyncio
import tempfile
from typing import Any

from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatMessage, MessageRole, ToolCallBlock
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.tools import FunctionTool
from llama_index.core.workflow import Context
from llama_index.memory.mem_adapters import MemAdaptersMemory, is_memory_message

from mem_adapters import MemoryEngine


def weather(city: str) -> str:
    """Today's weather in a city."""
    return f"{city}: sunny, 21C"


def scripted_llm(messages: list[ChatMessage], **kwargs: Any) -> ChatMessage:
    """Calls the weather tool once per question, then answers; reports recalled memories."""
    last_user = max(i for i, m in enumerate(messages) if m.role == MessageRole.USER)
    tool_results = [m for m in messages[last_user + 1 :] if m.role == MessageRole.TOOL]
    if not tool_results:
        call = ToolCallBlock(tool_call_id="call-1", tool_name="weather", tool_kwargs={"city": "Lisbon"})
        return ChatMessage(role="assistant", blocks=[call])
    recalled = [m.content for m in messages if is_memory_message(m)]
    note = f" (I remember: {recalled[0].splitlines()[2]})" if recalled else ""
    return ChatMessage(role="assistant", content=f"{tool_results[0].content}{note}")


async def main() -> None:
    with tempfile.TemporaryDirectory() as folder, MemoryEngine(folder) as engine:
        agent = FunctionAgent(
            tools=[FunctionTool.from_defaults(weather)],
            llm=MockFunctionCallingLLM(response_generator=scripted_llm),
            system_prompt="You are a helpful assistant.",
        )
        monday = MemAdaptersMemory.from_defaults(engine=engine, user_id="alice", session_id="monday")
        await agent.run("I only like walking holidays in warm places. Weather in Lisbon?", memory=monday)

        tuesday = MemAdaptersMemory.from_defaults(engine=engine, user_id="alice", session_id="tuesday")
        ctx = Context(agent)
        print(await agent.run("Should I plan a walk in Lisbon?", memory=tuesday, ctx=ctx))

        # The memory is plain settings in the saved context; the engine reconnects lazily.
        restored = Context.from_dict(agent, ctx.to_dict())
        print(await agent.run("And tomorrow?", ctx=restored))
        for message in await tuesday.aget_all():
            print(f"  {message.role.value:9} {message.content or [b.block_type for b in message.blocks]}")


if __name__ == "__main__":
    asyncio.run(main())
