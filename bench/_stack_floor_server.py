"""The stack's floor for an ISO 8583 inquiry: the least any gateway on this stack can spend per inquiry.

    python bench/_stack_floor_server.py PORT DATABASE_URL [PROCESSES]

Started by bench/stack_floor.py. The same libraries and the same work on the wire as `gateway serve`'s
inquiry, and nothing of the gateway's own: uvloop streams, the dialect's ascii4 framing, pyiso8583's decode
with the gateway's field table, one pooled asyncpg read (the inquiry's own statement, store/bills.read_keyed,
with a message key, on a pool of the gateway's default size), pyiso8583's encode of an answer that echoes
the request with RC and amount, one write. No format checks, no MAC, no message log, no recorder of quotes,
no logs, no metrics, no field 62. Network messages (0800) are answered 0810/00 so that the load generator
can sign on. With PROCESSES > 1 the process forks before its event loop starts and every process listens on
the port (SO_REUSEPORT), as `gateway serve`'s workers do.
"""
from __future__ import annotations

import asyncio
import os
import sys
from datetime import date

import asyncpg
import iso8583

from gateway.domain.assessment import tax_year_window
from gateway.iso8583.spec import SPEC
from gateway.runtime import run_fast
from gateway.store import bills

TODAY = date.today()
YEARS = tax_year_window(TODAY)


async def handle(pool: asyncpg.Pool, raw: bytes, writer: asyncio.StreamWriter) -> None:
    request, _ = iso8583.decode(raw, SPEC)
    answer = {k: v for k, v in request.items() if k not in ("p", "1", "64", "128")}
    if request["t"] == "0800":
        answer.update(t="0810", **{"39": "00"})
    else:
        bill, key = request["61"], f"{request['11']}:{request['7']}"
        async with pool.acquire() as conn:
            row = await bills.read_keyed(conn, "PBB", bill, YEARS, TODAY, ("iso", request["32"], key))
        answer.update(t="0210", **{"39": "00" if row["id"] is not None else "14"})
        if row["id"] is not None:
            answer["4"] = f"{row['principal']:012d}"
    data, _ = iso8583.encode(answer, SPEC)
    writer.write(b"%04d" % len(data) + bytes(data))


async def serve_connection(pool: asyncpg.Pool, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    tasks: set[asyncio.Task] = set()
    try:
        while True:
            size = int(await reader.readexactly(4))
            task = asyncio.create_task(handle(pool, await reader.readexactly(size), writer))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(port: int, url: str) -> None:
    pool = await asyncpg.create_pool(url, min_size=2, max_size=20)
    server = await asyncio.start_server(lambda r, w: serve_connection(pool, r, w), "127.0.0.1", port,
                                        reuse_port=True)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    for _ in range(int(sys.argv[3]) - 1 if len(sys.argv) > 3 else 0):
        if os.fork() == 0:
            sys.stdout = open(os.devnull, "w")  # the parent alone says "ready"
            break
    run_fast(main(int(sys.argv[1]), sys.argv[2]))
