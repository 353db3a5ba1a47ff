"""The bank side of an ISO 8583 link: one TCP connection, many requests in flight, answers matched by
field 11 + field 7 (spec/iso8583.md). Used by ``gateway bank-sim`` and by the end-to-end tests."""
from __future__ import annotations

import asyncio
import itertools
import random
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from gateway.iso8583 import framing, mac
from gateway.iso8583.profiles import original_data
from gateway.iso8583.spec import decode, encode

JAKARTA = ZoneInfo("Asia/Jakarta")


class IsoClient:
    def __init__(self, host: str, port: int, *, bank: str = "110", framing_name: str = "ascii4",
                 mac_key: bytes | None = None, timeout_s: float = 30.0, answer_echo: bool = True,
                 first_stan: int | None = None, preamble: bytes = b"", local_host: str | None = None):
        self.host, self.port = host, port
        self.local_host = local_host  # the source address to connect from (a bank behind a balancer, in tests)
        # Bytes sent before the first message: a balancer's PROXY protocol header (gateway.proxy_protocol).
        self.preamble = preamble
        self.bank = bank
        self.framing = framing_name
        self.mac_key = mac_key
        self.timeout_s = timeout_s
        self.answer_echo = answer_echo
        # STAN + field 7 is the message key: connections of one bank that send in the same second need
        # disjoint STANs (``first_stan``), as a bank's terminals have.
        self._stan = itertools.count(random.randint(1, 900_000) if first_stan is None else first_stan)
        self._waiting: dict[tuple[str, str], asyncio.Future] = {}
        self.unsolicited: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task | None = None
        self.closed = asyncio.Event()

    async def connect(self, ssl=None) -> "IsoClient":
        local_addr = (self.local_host, 0) if self.local_host else None
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port, ssl=ssl,
                                                                 local_addr=local_addr)
        if self.preamble:
            self.writer.write(self.preamble)
        self._task = asyncio.create_task(self._read())
        return self

    async def __aenter__(self) -> "IsoClient":
        return await self.connect()

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except (ConnectionError, OSError):
                pass
        if self._task is not None:
            self._task.cancel()

    def next_stan(self) -> str:
        return f"{next(self._stan) % 1_000_000:06d}"

    def encode(self, fields: dict[str, str]) -> bytes:
        return mac.sign(fields, self.mac_key) if self.mac_key else encode(fields)

    def send_raw(self, data: bytes) -> None:
        assert self.writer is not None
        self.writer.write(data)

    async def request(self, fields: dict[str, str]) -> dict[str, str]:
        """Send one request and wait for the answer with the same STAN and field 7."""
        assert self.writer is not None
        key = (fields["11"], fields["7"])
        future = asyncio.get_running_loop().create_future()
        self._waiting[key] = future
        self.writer.write(framing.frame(self.encode(fields), self.framing))
        await self.writer.drain()
        try:
            return await asyncio.wait_for(future, self.timeout_s)
        finally:
            self._waiting.pop(key, None)

    async def _read(self) -> None:
        assert self.reader is not None
        try:
            while True:
                raw = await framing.read_frame(self.reader, self.framing)
                if raw is None:
                    break
                fields = decode(raw)
                fields["_raw"] = raw.decode("ascii", "replace")
                if fields["t"] == "0800" and self.answer_echo:
                    answer = {"t": "0810", "7": fields["7"], "11": fields["11"], "39": "00", "70": fields["70"]}
                    if "32" in fields:
                        answer["32"] = fields["32"]
                    assert self.writer is not None  # set with the reader by connect()
                    self.writer.write(framing.frame(self.encode(answer), self.framing))
                future = self._waiting.get((fields.get("11", ""), fields.get("7", "")))
                if future is not None and not future.done():
                    future.set_result(fields)
                else:
                    self.unsolicited.put_nowait(fields)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            self.closed.set()
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(ConnectionError("connection closed before the answer"))

    # -- message builders --------------------------------------------------------------------------

    def base(self, mti: str, processing_code: str, amount: int = 0, *, channel: str = "6011",
             stan: str | None = None) -> dict[str, str]:
        now = datetime.now(UTC)
        local = now.astimezone(JAKARTA)
        stan = stan or self.next_stan()
        return {
            "t": mti, "3": processing_code, "4": f"{amount:012d}", "7": now.strftime("%m%d%H%M%S"),
            "11": stan, "12": local.strftime("%H%M%S"), "13": local.strftime("%m%d"), "18": channel,
            "32": self.bank, "37": f"{local.strftime('%y%m%d')}{stan}", "41": "ATM00001", "49": "360",
        }

    def inquiry(self, tax: str, bill_id: str, **kw) -> dict[str, str]:
        fields = self.base("0200", "341019" if tax == "pbb" else "341066", 0, **kw)
        fields["61"] = bill_id
        return fields

    def payment(self, tax: str, bill_id: str, amount: int, ntb: str | None = None, **kw) -> dict[str, str]:
        fields = self.base("0200", "541019" if tax == "pbb" else "541066", amount, **kw)
        fields["61"] = bill_id
        fields["48"] = ntb or f"NTB{fields['11']}"
        return fields

    def reversal(self, original: dict[str, str], *, ntpd: str | None = None, repeat: bool = False,
                 stan: str | None = None) -> dict[str, str]:
        fields = self.base("0401" if repeat else "0400", original["3"], int(original["4"]),
                           channel=original.get("18", "6011"), stan=stan)
        fields["61"] = original["61"]
        fields["48"] = original.get("48", "")
        fields["90"] = original_data("0200", original["11"], original["7"], original["32"], original.get("33", ""))
        if ntpd:
            fields["47"] = ntpd
        if not fields["48"]:
            del fields["48"]
        return fields

    def network(self, code: str) -> dict[str, str]:
        now = datetime.now(UTC)
        return {"t": "0800", "7": now.strftime("%m%d%H%M%S"), "11": self.next_stan(), "32": self.bank, "70": code}
