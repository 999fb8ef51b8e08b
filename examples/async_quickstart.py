"""The same flow with AsyncMemoryEngine: nothing blocks the event loop (offline).

Run: MEM_ADAPTERS_MODEL_DIR=../shared/models/all-MiniLM-L6-v2/onnx python examples/async_quickstart.py
"""

import asyncio
import tempfile

from mem_adapters import AsyncMemoryEngine


async def main() -> None:
    async with AsyncMemoryEngine(tempfile.mkdtemp(prefix="mem-adapters-")) as engine:
        # Two concurrent writers to one session: nothing is lost, order is write order.
        await asyncio.gather(
            *(
                engine.remember([{"role": "user", "text": f"note {i}", "id": f"n{i}"}], session_id="s")
                for i in range(5)
            )
        )
        print([t.text for t in await engine.get_messages("s")])
        hits = await engine.search("note 3", session_id="s", k=1)
        print("best hit:", hits.results[0].text)


asyncio.run(main())
