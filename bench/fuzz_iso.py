"""Fuzzing the ISO 8583 listener: mutations of valid messages and random bytes, in-process and over TCP.

    .venv/bin/python bench/fuzz_iso.py                                  # 1,000,000 inputs through the codec
    .venv/bin/python bench/fuzz_iso.py --count 0 --start                # 20,000 over TCP to a gateway it starts
    .venv/bin/python bench/fuzz_iso.py --count 0 --host 127.0.0.1 --port 8583 --tcp-count 50000
    .venv/bin/python bench/fuzz_iso.py --seed 7 --json                  # another sequence; one JSON line at the end

In-process, each input takes the listener's path for a message body without the sockets: decode; on an
IsoFormatError the message-log view of what was read and, for a readable request MTI, the RC 30 answer
(encoded plain and with a MAC, as the connection does); on success the log view, the canonical re-encoding
and MAC verification. Any other exception is a crash: counted, and the first inputs of each kind written
to ``--crash-dir`` (hex) to be replayed.

Over TCP, each input is one connection: the fuzzed frame (a correct length header, or one that is longer,
shorter, not digits or above 8192), an echo request behind it as a probe, then a half-close, and everything
the gateway sends until it closes. Outcomes: ``answered`` (the gateway answered the fuzzed frame),
``dropped`` (only the probe was answered), ``closed`` (nothing answered: an untrusted header, or a frame
the half-close left incomplete). A gateway that does not close within ``--timeout``, sends bytes that are
not a whole, decodable answer, or stops accepting connections is a crash. ``--start`` starts its own
``gateway serve`` (embedded PostgreSQL in a temporary directory, a seeded demo region) and afterwards
also reports what its log says about tracebacks.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import date
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _scratch import free_port  # noqa: E402

from gateway.banksim.client import IsoClient  # noqa: E402
from gateway.iso8583 import framing, mac  # noqa: E402
from gateway.iso8583.connection import masked  # noqa: E402
from gateway.iso8583.messages import Router  # noqa: E402
from gateway.iso8583.spec import IsoFormatError, decode, encode, is_request, response_mti  # noqa: E402

KEY = bytes(range(32))
PROBE_STAN, PROBE_TIME = "999999", "1231235959"


# -- inputs ----------------------------------------------------------------------------------------------


def base_messages(bank: str, bill: str, rng: random.Random) -> list[bytes]:
    """Valid messages of every kind the dialect has, some signed, some with card fields."""
    client = IsoClient("127.0.0.1", 0, bank=bank)
    out = []
    for _ in range(4):
        inquiry = client.inquiry("pbb", bill)
        payment = client.payment("pbb", bill, rng.choice([150_000, 1, 999_999_999]))
        bphtb = client.inquiry("bphtb", "32750000000123" + bill)
        reversal = client.reversal(payment)
        carded = dict(inquiry, **{"2": "4111111111111111", "35": "4111111111111111D2512", "45": "B4111^X/Y^25",
                                  "43": "KANTOR CABANG UTAMA", "33": "009"})
        for fields in (inquiry, payment, bphtb, reversal, carded, client.network("001"), client.network("301"),
                       client.network("002"), client.network("201"), dict(inquiry, t="0100"),
                       dict(client.network("301"), t="0810", **{"39": "00"})):
            out.append(encode(fields))
            out.append(mac.sign(fields, KEY))
    return out


def mutate(raw: bytes, bases: list[bytes], rng: random.Random) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 5))):
        op = rng.randrange(10)
        pos = rng.randrange(len(data) + 1)
        if op == 0 and data:  # bit flip
            data[min(pos, len(data) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1 and data:  # any byte
            data[min(pos, len(data) - 1)] = rng.randrange(256)
        elif op == 2:  # truncation
            del data[pos:]
        elif op == 3:  # inserted bytes
            data[pos:pos] = rng.randbytes(rng.randint(1, 8))
        elif op == 4:  # deleted bytes
            del data[pos:pos + rng.randint(1, 8)]
        elif op in (5, 6):  # one digit changed: MTI, length prefixes, numeric fields
            digits = [i for i, b in enumerate(data) if 0x30 <= b <= 0x39]
            if digits:
                data[rng.choice(digits)] = rng.choice(b"0123456789")
        elif op == 7 and len(data) >= 20:  # a bitmap character
            data[rng.randint(4, 19)] = rng.choice(b"0123456789ABCDEFabcdef G")
        elif op == 8:  # spliced with another message
            other = rng.choice(bases)
            data[pos:] = other[rng.randrange(len(other) + 1):]
        elif op == 9 and data:  # a range repeated
            start = rng.randrange(len(data))
            data[pos:pos] = data[start:start + rng.randint(1, 16)]
    return bytes(data)


def fuzz_input(bases: list[bytes], rng: random.Random) -> bytes:
    roll = rng.random()
    if roll < 0.10:
        return rng.randbytes(rng.randint(0, 400))
    if roll < 0.20:
        return rng.choice([b"0200", b"0400", b"0800", b"0210", b"0810"]) + rng.randbytes(rng.randint(0, 200))
    return mutate(rng.choice(bases), bases, rng)


# -- in-process ------------------------------------------------------------------------------------------


def _router() -> Router:
    ctx = SimpleNamespace(business_date=lambda now: date(2026, 4, 15), clock=SimpleNamespace(now=lambda: None))
    return Router(SimpleNamespace(ctx=ctx))


def _answer_bytes(fields: dict[str, str], key: bytes | None) -> bytes:
    """As the connection encodes an answer (connection._encode)."""
    try:
        return mac.sign(fields, key) if key else encode(fields)
    except ValueError:
        minimal = {k: fields[k] for k in ("t", "7", "11", "15", "39") if k in fields}
        return mac.sign(minimal, key) if key else encode(minimal)


def one_in_process(data: bytes, router: Router) -> str:
    try:
        fields = decode(data)
    except IsoFormatError as exc:
        json.dumps(masked(exc.fields))
        if exc.mti and is_request(exc.mti):
            outcome = router.refuse(dict(exc.fields, t=exc.mti), "30", detail=exc.reason)
            _answer_bytes(outcome.fields, KEY)  # a bank with a MAC key
            answer = decode(_answer_bytes(outcome.fields, None))
            if (answer["t"], answer["39"]) != (response_mti(exc.mti), "30"):
                raise AssertionError(f"RC 30 answer came out as {answer}")
            return "format error, answered RC 30"
        return "format error, dropped"
    json.dumps(masked(fields))
    if encode(fields) != data:
        raise AssertionError("accepted a message that does not re-encode to the same bytes")
    mac.verify(data, KEY)
    return "decoded request" if is_request(fields["t"]) else "decoded answer"


def run_in_process(count: int, seed: int, crash_dir: Path) -> dict:
    rng = random.Random(seed)
    bases = base_messages("110", "3275010001001000102026", rng)
    router = _router()
    outcomes: Counter[str] = Counter()
    crashes: Counter[str] = Counter()
    started = time.monotonic()
    for n in range(count):
        data = fuzz_input(bases, rng)
        try:
            outcomes[one_in_process(data, router)] += 1
        except Exception as exc:  # noqa: BLE001 - that is what is being counted
            kind = f"{type(exc).__name__}: {str(exc)[:120]}"
            crashes[kind] += 1
            if crashes[kind] <= 3:
                crash_dir.mkdir(parents=True, exist_ok=True)
                (crash_dir / f"codec-{n}.hex").write_text(data.hex() + "\n" + kind + "\n")
    elapsed = time.monotonic() - started
    return {"inputs": count, "seconds": round(elapsed, 1), "per_second": round(count / elapsed) if elapsed else 0,
            "outcomes": dict(outcomes), "crashes": sum(crashes.values()), "crash_kinds": dict(crashes)}


# -- over TCP --------------------------------------------------------------------------------------------


def tcp_frame(body: bytes, rng: random.Random) -> tuple[bytes, str]:
    roll = rng.random()
    if roll < 0.70:
        return framing.frame(body[:framing.MAX_MESSAGE_BYTES], "ascii4"), "right"
    if roll < 0.80:
        return b"%04d" % min(9999, len(body) + rng.randint(1, 40)) + body, "longer"
    if roll < 0.90:
        return b"%04d" % max(0, len(body) - rng.randint(1, 40)) + body, "shorter"
    if roll < 0.95:
        return rng.choice([b" 123", b"+123", b"12a4", b"\x00\x00\x00\x05", b"-001", b"0x10"]) + body, "not digits"
    return b"%04d" % rng.randint(8193, 9999) + body, "oversized"


async def one_over_tcp(host: str, port: int, data: bytes, probe: bytes, timeout: float) -> tuple[str, list[dict]]:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(data + probe)
        try:
            await writer.drain()
            writer.write_eof()
        except (ConnectionError, OSError):
            pass
        received = bytearray()
        while True:
            try:
                chunk = await asyncio.wait_for(reader.read(65536), timeout)
            except (ConnectionError, OSError):
                break
            if not chunk:
                break
            received += chunk
    finally:
        writer.close()
    decoder = framing.FrameDecoder("ascii4")
    answers = [decode(raw) for raw in decoder.feed(bytes(received))]
    if decoder._buffer:
        raise AssertionError(f"partial frame from the gateway: {bytes(received)!r}")
    others = [a for a in answers if (a["t"], a.get("11"), a.get("7")) != ("0810", PROBE_STAN, PROBE_TIME)]
    if others:
        return "answered", others
    return ("dropped" if answers else "closed"), []


async def echo_ok(host: str, port: int) -> bool:
    client = IsoClient(host, port, timeout_s=10)
    try:
        await client.connect()
        return (await client.request(client.network("301")))["39"] == "00"
    except (OSError, ConnectionError, asyncio.TimeoutError):
        return False
    finally:
        await client.close()


async def run_over_tcp(host: str, port: int, count: int, seed: int, concurrency: int, bank: str, bill: str,
                       timeout: float, crash_dir: Path) -> dict:
    rng = random.Random(seed + 1)
    bases = base_messages(bank, bill, rng)
    probe = framing.frame(encode({"t": "0800", "7": PROBE_TIME, "11": PROBE_STAN, "32": bank, "70": "301"}),
                          "ascii4")
    outcomes: Counter[str] = Counter()
    by_header: Counter[str] = Counter()
    codes: Counter[str] = Counter()
    mtis: Counter[str] = Counter()
    crashes: Counter[str] = Counter()
    inputs = iter(range(count))
    started = time.monotonic()

    async def worker() -> None:
        for n in inputs:
            body = fuzz_input(bases, rng)
            data, header = tcp_frame(body, rng)
            try:
                outcome, answers = await one_over_tcp(host, port, data, probe, timeout)
            except Exception as exc:  # noqa: BLE001 - counted
                kind = f"{type(exc).__name__}: {str(exc)[:120]}"
                crashes[kind] += 1
                if crashes[kind] <= 3:
                    crash_dir.mkdir(parents=True, exist_ok=True)
                    (crash_dir / f"tcp-{n}.hex").write_text(data.hex() + "\n" + kind + "\n")
                continue
            outcomes[outcome] += 1
            by_header[f"{header}: {outcome}"] += 1
            for answer in answers:
                codes[f"RC {answer.get('39')}"] += 1
                mtis[answer["t"]] += 1
            if n and n % 5000 == 0 and not await echo_ok(host, port):
                crashes["echo on a fresh connection failed"] += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.monotonic() - started
    alive = await echo_ok(host, port)
    return {"inputs": count, "seconds": round(elapsed, 1), "per_second": round(count / elapsed) if elapsed else 0,
            "outcomes": dict(outcomes), "by_header": dict(sorted(by_header.items())),
            "answers_by_rc": dict(codes.most_common()), "answer_mtis": len(mtis),
            "answers_by_mti": dict(mtis.most_common(8)), "crashes": sum(crashes.values()), "crash_kinds": dict(crashes),
            "echo_after": alive}


# -- a gateway of our own --------------------------------------------------------------------------------


def start_gateway(work: Path) -> tuple[subprocess.Popen, int, str]:
    port = free_port()
    config = work / "gw.toml"
    config.write_text(f'[state]\ndir = "{work}/state"\n[proof]\nkey_dir = "{work}/keys"\n'
                      f'[http]\nlisten = "127.0.0.1:{free_port()}"\n'
                      f'[iso8583]\nlisten = "127.0.0.1:{port}"\n'
                      f'[[banks]]\ncode = "110"\nallow = ["127.0.0.1/32"]\n')
    env = {k: v for k, v in os.environ.items() if k != "GATEWAY_DATABASE_URL"}
    subprocess.run([sys.executable, "-m", "gateway", "db", "migrate", "--config", str(config)], check=True,
                   capture_output=True, env=env, cwd=work)
    seeded = subprocess.run([sys.executable, "-m", "gateway", "demo", "seed", "--objects", "2000", "--config",
                             str(config)], check=True, capture_output=True, text=True, env=env, cwd=work)
    hint = re.search(r"gateway inquiry pbb (\S+) (\d{4})", seeded.stdout + seeded.stderr)
    bill = re.sub(r"\D", "", hint.group(1)) + hint.group(2) if hint else "3275010001001000102026"
    server = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "--config", str(config)], env=env,
                              cwd=work, stdout=open(work / "serve.log", "wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server, port, bill
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("gateway did not start:\n" + (work / "serve.log").read_text(errors="replace"))
            time.sleep(0.2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=1_000_000, help="in-process inputs (0: none)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, help="fuzz a running gateway's ISO 8583 listener")
    ap.add_argument("--start", action="store_true", help="start a gateway of its own and fuzz it over TCP")
    ap.add_argument("--tcp-count", type=int, default=20_000)
    ap.add_argument("--concurrency", type=int, default=8, help="connections at a time (the gateway allows 16 "
                                                               "per source address)")
    ap.add_argument("--bank", default="110")
    ap.add_argument("--bill", default="", help="NOP + year of a bill to build the valid messages on")
    ap.add_argument("--timeout", type=float, default=15.0, help="seconds the gateway has to close a connection")
    ap.add_argument("--crash-dir", type=Path, default=Path("fuzz-crashes"))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    report: dict = {"seed": args.seed}
    if args.count:
        report["in_process"] = run_in_process(args.count, args.seed, args.crash_dir)
        if not args.json:
            print("in-process:", json.dumps(report["in_process"], indent=2), flush=True)
    server = work = None
    try:
        port, bill = args.port, args.bill or "3275010001001000102026"
        if args.start:
            work = Path(tempfile.mkdtemp(prefix="gw-fuzz-"))
            os.chmod(work, 0o755)  # the embedded server may run as another user
            server, port, seeded_bill = start_gateway(work)
            bill = args.bill or seeded_bill
        if port:
            report["tcp"] = asyncio.run(run_over_tcp(args.host, port, args.tcp_count, args.seed, args.concurrency,
                                                     args.bank, bill, args.timeout, args.crash_dir))
            if server is not None:
                report["tcp"]["gateway_alive"] = server.poll() is None
                text = (work / "serve.log").read_text(errors="replace")
                report["tcp"]["log"] = {"tracebacks": text.count("Traceback"),
                                        "unexpected_failures": text.count("unexpected failure"),
                                        "security_events": text.count("security: "),
                                        "untrusted_streams": text.count("untrusted stream")}
            if not args.json:
                print("tcp:", json.dumps(report["tcp"], indent=2), flush=True)
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
            subprocess.run([sys.executable, "-m", "gateway", "db", "stop", "--config", str(work / "gw.toml")],
                           capture_output=True, cwd=work)
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(report))
    crashed = report.get("in_process", {}).get("crashes", 0) + report.get("tcp", {}).get("crashes", 0)
    sys.exit(1 if crashed or report.get("tcp", {}).get("echo_after") is False else 0)


if __name__ == "__main__":
    main()
