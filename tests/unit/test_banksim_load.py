"""bank-sim's load: each request waits for its answer as long as ``--timeout`` says, not longer."""
from __future__ import annotations

import asyncio
import io
from contextlib import redirect_stdout

from gateway.banksim.load import LoadPlan, run_load


async def test_a_request_never_answered_gives_up_after_the_timeout():
    connections: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)  # reads nothing, answers nothing, keeps the connection open
        await asyncio.sleep(3600)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    plan = LoadPlan(concurrency=1, connections=1, duration_s=0.1, mix={"inquiry": 1})
    try:
        with redirect_stdout(io.StringIO()):
            # With the 30 s default in force the one request would still be waiting when this bound runs out.
            report = await asyncio.wait_for(
                run_load("127.0.0.1", port, bank="110", framing_name="ascii4", mac_key=None,
                         bills=[("pbb", "3275010001001000102026")], plan=plan, timeout_s=0.2), 10)
    finally:
        server.close()
        for writer in connections:
            writer.close()
    assert dict(report.errors) == {"TimeoutError": 1}
    assert report.requests == 0
