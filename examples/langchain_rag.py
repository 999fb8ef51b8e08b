"""An LCEL RAG chain over mem-adapters memory, with a chat history, fully offline.

The chat history stores each exchange as engine turns; the retriever pulls the relevant
ones back into the prompt. A fake chat model stands in for an LLM (swap in any chat model).

Run: MEM_ADAPTERS_MODEL_DIR=../shared/models/all-MiniLM-L6-v2/onnx python examples/langchain_rag.py
"""

import tempfile

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda, RunnablePassthrough
from langchain_mem_adapters import MemAdaptersChatMessageHistory, MemAdaptersRetriever, documents_text

from mem_adapters import MemoryEngine

with MemoryEngine(tempfile.mkdtemp(prefix="mem-adapters-")) as engine:
    # An earlier conversation, written through the LangChain chat history.
    history = MemAdaptersChatMessageHistory("chat-1", engine=engine, user_id="dana")
    history.add_messages(
        [
            HumanMessage("I'm allergic to shellfish."),
            AIMessage("Noted - no shellfish for you."),
            HumanMessage("My sister Ana lives in Lisbon."),
            AIMessage("Lisbon is lovely."),
        ]
    )

    retriever = MemAdaptersRetriever(engine=engine, user_id="dana", k=2)
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Answer using what you remember:\n{context}"), ("human", "{question}")]
    )
    shown: list[str] = []

    def show(prompt_value):
        shown.append(prompt_value.to_string())
        return prompt_value

    model = GenericFakeChatModel(messages=iter(["Skip the paella: you are allergic to shellfish."]))
    chain = (
        {"context": retriever | RunnableLambda(documents_text), "question": RunnablePassthrough()}
        | prompt
        | RunnableLambda(show)
        | model
        | StrOutputParser()
    )
    answer = chain.invoke("Can I order the seafood paella?")
    print("prompt sent to the model:\n" + shown[0])
    print("answer:", answer)
    assert "allergic to shellfish" in shown[0], "the retriever should have found the allergy"
