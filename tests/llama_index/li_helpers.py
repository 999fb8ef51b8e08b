"""Shared data of the LlamaIndex integration tests."""

from __future__ import annotations

import base64

from llama_index.core.base.llms.types import (
    ChatMessage,
    DocumentBlock,
    ImageBlock,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n\x00\xff\xfe"


def rich_messages() -> list[ChatMessage]:
    """One message per block type, plus tool-call plumbing in additional_kwargs."""
    return [
        ChatMessage(role="system", content="You are terse."),
        ChatMessage(role="user", content="hello"),
        ChatMessage(role="user", content="hello"),  # identical messages must both be kept
        ChatMessage(
            role="user",
            blocks=[
                TextBlock(text="what is in this picture?"),
                ImageBlock(image=PNG, image_mimetype="image/png"),
            ],
        ),
        ChatMessage(role="user", blocks=[ImageBlock(url="https://example.com/cat.png")]),
        ChatMessage(
            role="assistant",
            blocks=[
                ThinkingBlock(content="the user wants the weather"),
                ToolCallBlock(
                    tool_call_id="call_1", tool_name="weather", tool_kwargs={"city": "Paris", "days": 2}
                ),
            ],
            additional_kwargs={
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                    }
                ]
            },
        ),
        ChatMessage(
            role="tool", content="sunny, 21C", additional_kwargs={"tool_call_id": "call_1", "name": "weather"}
        ),
        ChatMessage(
            role="user",
            blocks=[
                TextBlock(text="summarise this"),
                DocumentBlock(data=PDF, document_mimetype="application/pdf", title="doc"),
            ],
        ),
        ChatMessage(
            role="assistant",
            content="Unicode ✓ — ünïcödé 日本語",
            additional_kwargs={"refusal": None, "n": 1.5},
        ),
    ]
