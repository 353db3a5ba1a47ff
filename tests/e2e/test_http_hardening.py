"""The HTTP channel against hostile input, over real sockets to a real ``gateway serve`` (spec/http-api.md
"Staff routes": the text rules, failed sign-ins, session expiry, parser refusals, connection limits).

Every hostile request gets an exact status and response code, leaves exact rows, and is followed by one
good signed bank request whose message-log rows must still arrive: no input may disturb the message log.
Raw sockets where the bytes matter (header bytes that are not UTF-8, a bare "?", broken heads).
"""
from __future__ import annotations

import asyncio
import json
import re
import socket
import uuid

import aiohttp
import pytest

from billdata import add_pbb
from helpers.db import counts
from helpers.gateway import start, wait_http
from helpers.http import FAR_DUE, NOP, PRINCIPAL, YEAR, assert_business, assert_problem, pbb_body
from helpers.staff import PASSWORD, add_user, token_for

pytestmark = pytest.mark.integration

SECRET = "s3cr3t-DO-NOT-ECHO-7f1c2b9a"
REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")


# -- raw HTTP ------------------------------------------------------------------------------------------


async def raw_exchange(gw, data: bytes | list[bytes], *, wait_s: float = 10.0) -> bytes:
    """Send ``data`` on a new connection (a list: one write each), then read until the gateway closes.

    A plain blocking socket, in a thread: the gateway may answer (431) and close while chunks are still being
    written, and its reset must not discard the answer already received, as an asyncio transport does when a
    write fails (the kernel hands out queued bytes before it reports the reset)."""
    return await asyncio.to_thread(_exchange, gw.http_port, data if isinstance(data, list) else [data], wait_s)


def _exchange(port: int, chunks: list[bytes], wait_s: float) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=wait_s) as sock:
        try:
            for chunk in chunks:
                sock.sendall(chunk)
        except OSError:
            pass  # the gateway answered (431) and closed before the last chunks: read what it sent
        got = bytearray()
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionError:
                return bytes(got)  # a reset after the answer (the gateway closing with our bytes unread)
            if not chunk:
                return bytes(got)
            got += chunk


def parse_answer(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def request_bytes(method: str, target: bytes | str, headers: list[tuple[str, bytes | str]],
                  body: bytes = b"") -> bytes:
    target = target.encode() if isinstance(target, str) else target
    lines = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
    for name, value in headers:
        lines.append(name.encode() + b": " + (value.encode() if isinstance(value, str) else value))
    if body:
        lines += [b"Content-Type: application/json", b"Content-Length: " + str(len(body)).encode()]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def signed(bank, method: str, target: str, body: bytes = b"", sign_target: str | None = None,
           **extra: bytes | str) -> list[tuple[str, bytes | str]]:
    headers: list[tuple[str, bytes | str]] = list(bank.headers(method, sign_target or target, body).items())
    return headers + [(name.replace("_", "-"), value) for name, value in extra.items()]


async def raw_call(gw, method: str, target: bytes | str, headers, body: bytes = b""):
    status, answer_headers, payload = parse_answer(await raw_exchange(gw, request_bytes(method, target, headers,
                                                                                        body)))
    parsed = json.loads(payload) if "json" in answer_headers.get("content-type", "") else payload
    return status, answer_headers, parsed


def assert_raw_problem(answer, status: int, rc: str | None) -> dict:
    got, headers, body = answer
    assert got == status, (got, body)
    assert headers["content-type"].split(";")[0] == "application/problem+json", headers
    assert headers.get("x-request-id"), headers
    assert body["status"] == status and body["title"] and body["detail"], body
    if rc is None:
        assert "response_code" not in body, body
    else:
        assert body["response_code"] == rc, body
    return body


def assert_raw_business(answer, rc: str) -> dict:
    status, headers, body = answer
    assert status == 200 and headers["content-type"].split(";")[0] == "application/json", (status, body)
    assert body["response_code"] == rc, body
    return body


async def configured(make_gateway, http_settings: str):
    """A gateway whose [http] table has these settings too (make_gateway writes that table itself)."""
    gw = make_gateway(start=False)
    gw.config_path.write_text(gw.config_path.read_text().replace("[http]\n", "[http]\n" + http_settings, 1))
    gw.start()
    await wait_http(gw)
    return gw


async def message_log_alive(db, bank) -> None:
    """One good signed bank request; its two message-log rows (in and out) must be written."""
    request_id = uuid.uuid4().hex
    answer = await bank.call("GET", f"/v1/pbb/bills/{NOP}/{YEAR}", extra_headers={"X-Request-Id": request_id})
    assert answer[0] == 200 and answer[1]["X-Request-Id"] == request_id, answer
    for _ in range(200):  # bounded: up to 10 s
        rows = await db.fetchval("SELECT count(*) FROM message_log WHERE connection_id = $1", request_id)
        if rows >= 2:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the message log has {rows} rows of a good request after hostile input")


async def business_counts(db) -> dict[str, int]:
    """Every table a request could write, but the nonces (a signed request's nonce is spent either way)."""
    out = await counts(db)
    del out["http_nonces"]
    for table in ("transaction_notes", "staff_sessions", "recon_items"):
        out[table] = await db.fetchval(f"SELECT count(*) FROM {table}")
    return out


# -- the text rules on bank routes ---------------------------------------------------------------------


async def test_unclean_text_on_bank_routes_is_400_rc_30_and_stores_nothing(gateway, db, http_client):
    await add_pbb(db, year=YEAR, due=FAR_DUE)
    bank = http_client()
    await message_log_alive(db, bank)
    before = await business_counts(db)
    pay = "/v1/pbb/payments"

    def body(**fields) -> bytes:
        return json.dumps(pbb_body(**fields)).encode()

    # JSON string values, sent as raw JSON text so that escapes reach the gateway as written.
    good = json.dumps(pbb_body())
    bodies = {
        "ntb lone surrogate": good.replace('"NTB-1"', '"\\ud800"').encode(),
        "ntb low surrogate": good.replace('"NTB-1"', '"A\\udfffB"').encode(),
        "ntb NUL": good.replace('"NTB-1"', '"NTB\\u0000"').encode(),
        "ntb escape char": good.replace('"NTB-1"', '"NTB\\u001b[2J"').encode(),
        "ntb C1 control": good.replace('"NTB-1"', '"NTB\\u0085"').encode(),
        "ntb TAB": good.replace('"NTB-1"', '"NTB\\t1"').encode(),
        "ntb of 33": body(ntb="N" * 33),
        "terminal_id of 17": body(terminal_id="T" * 17),
        "terminal_id with a newline": body(terminal_id="TLR\n1"),
        "terminal_id not text": body(terminal_id=7),
        "a member name with NUL": good.replace('"channel"', '"chan\\u0000nel"').encode(),
        "an unknown member with a surrogate": good.replace("{", '{"x": ["\\udc80"], ', 1).encode(),
        "not UTF-8": good.replace("NTB-1", "NTB-\xff").encode("latin-1"),
        "UTF-16": good.encode("utf-16"),
        "nested 100000 deep": b'{"nop": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        "nested 40 deep": good.replace("{", '{"x": ' + "[" * 40 + "]" * 40 + ", ", 1).encode(),
        "NaN amount": good.replace(f'"amount": {PRINCIPAL}', '"amount": NaN').encode(),
    }
    for n, (name, data) in enumerate(bodies.items()):
        answer = await bank.call("POST", pay, raw=data, idempotency_key=f"hostile-{n}")
        assert_problem(answer, 400, "30")
    reversal = {"ntpd": "261123100000001210", "amount": PRINCIPAL}
    for n, reason in enumerate(("R" * 256, "cancelled\x00", "cancelled \x1b[31m", "\ud800")):
        data = json.dumps({**reversal, "reason": reason}).encode()
        assert_problem(await bank.call("POST", "/v1/reversals", raw=data, idempotency_key=f"rev-{n}"), 400, "30")

    # Request targets: percent-encoded garbage in the path and the query, signed as sent.
    for target in ("/v1/payments/%00", "/v1/payments/%FF", "/v1/payments/%C3%28", "/v1/payments/%ZZ",
                   "/v1/payments/%ED%A0%80", f"/v1/pbb/bills/{NOP}%0A/{YEAR}", "/v1/bphtb/bills/X?nop=%00",
                   "/v1/bphtb/bills/X?nop=%FF", "/v1/bphtb/bills/X?tax_year=%1b", f"/v1/pbb/bills/{NOP}?x=%"):
        answer = await raw_call(gateway, "GET", target, signed(bank, "GET", target))
        assert_raw_problem(answer, 400, "30")
    # A target with raw bytes that are not UTF-8 (aiohttp hands them on as lone surrogates).
    raw_target = f"/v1/pbb/bills/{NOP}/".encode() + b"\xff\xfe"
    answer = await raw_call(gateway, "GET", raw_target, signed(bank, "GET", "/v1/pbb/bills/x"))
    assert_raw_problem(answer, 400, "30")

    # Header values the gateway reads: not UTF-8, or control characters the parser lets through.
    target = f"/v1/pbb/bills/{NOP}/{YEAR}"
    payment = body()
    header_cases = [
        ("GET", target, b"", signed(bank, "GET", target)[1:] + [("X-Bank-Code", b"11\xff")]),
        ("GET", target, b"", signed(bank, "GET", target)[1:] + [("X-Bank-Code", b"110\x7f")]),
        ("GET", target, b"", signed(bank, "GET", target)[1:] + [("X-Bank-Code", "110\u0085".encode())]),
        ("POST", pay, payment, signed(bank, "POST", pay, payment) + [("Idempotency-Key", b"key-\xc3\x28")]),
        ("POST", pay, payment, signed(bank, "POST", pay, payment) + [("Idempotency-Key", b"key\x7f")]),
        ("GET", target, b"", [(n, v + b"\xff" if n == "X-Nonce" else v)
                              for n, v in ((n, v.encode()) for n, v in signed(bank, "GET", target))]),
    ]
    for method, path, data, headers in header_cases:
        assert_raw_problem(await raw_call(gateway, method, path, headers, data), 400, "30")

    assert await business_counts(db) == before
    assert await db.fetchval("SELECT status FROM bills WHERE nop = $1", NOP) == "unpaid"
    await message_log_alive(db, bank)

    # The limits are limits, not more: a reason of 255 with TAB and line breaks, a terminal of 16 with a
    # non-ASCII letter, an NTB of 32 are accepted.
    reason = "customer\tcancelled\r\nat teller " + "x" * 225
    assert len(reason) == 255
    answer = await bank.call("POST", "/v1/reversals", {**reversal, "reason": reason}, idempotency_key="rev-ok")
    assert_business(answer, "14")
    paid = await bank.pbb_payment("pay-ok", **pbb_body(ntb="N" * 32, terminal_id="Tëller-" + "T" * 9))
    assert_business(paid, "00")
    assert await db.fetchval("SELECT count(*) FROM payments") == 1
    await message_log_alive(db, bank)


async def test_request_id_is_echoed_only_when_usable(gateway, db, http_client):
    await add_pbb(db, year=YEAR, due=FAR_DUE)
    bank = http_client()
    target = f"/v1/pbb/bills/{NOP}/{YEAR}"
    usable = "req-" + "r" * 124
    answer = await raw_call(gateway, "GET", target, signed(bank, "GET", target, X_Request_Id=usable))
    assert answer[0] == 200 and answer[1]["x-request-id"] == usable
    for unusable in (b"r" * 129, b"req\xff", "req-é".encode(), b"req id", b""):
        answer = await raw_call(gateway, "GET", target, signed(bank, "GET", target, X_Request_Id=unusable))
        assert answer[0] == 200, (unusable, answer)
        assert REQUEST_ID.match(answer[1]["x-request-id"]), (unusable, answer[1])
    await message_log_alive(db, bank)


# -- the signature over the target as sent ---------------------------------------------------------------


async def test_signature_covers_the_target_as_sent_bare_question_mark_included(gateway, db, http_client):
    await add_pbb(db, year=YEAR, due=FAR_DUE)
    bank = http_client()
    plain = f"/v1/pbb/bills/{NOP}/{YEAR}"
    bare = plain + "?"
    assert_raw_business(await raw_call(gateway, "GET", bare, signed(bank, "GET", bare)), "00")
    # Signed over the other form than the one sent: refused either way.
    assert_raw_problem(await raw_call(gateway, "GET", bare, signed(bank, "GET", bare, sign_target=plain)), 401,
                       None)
    assert_raw_problem(await raw_call(gateway, "GET", plain, signed(bank, "GET", plain, sign_target=bare)), 401,
                       None)
    # Percent-encoding is signed as sent too, not as decoded.
    encoded = f"/v1/pbb/bills/{NOP}/%32{str(YEAR)[1:]}"
    assert_raw_business(await raw_call(gateway, "GET", encoded, signed(bank, "GET", encoded)), "00")
    assert_raw_problem(await raw_call(gateway, "GET", encoded, signed(bank, "GET", encoded, sign_target=plain)),
                       401, None)
    await message_log_alive(db, bank)


# -- staff routes ------------------------------------------------------------------------------------------


async def staff_call(gw, method: str, target: str, headers: dict[str, str] | None = None, **kw):
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        async with http.request(method, gw.http_url + target, headers=headers, **kw) as resp:
            body = await resp.read()
            parsed = json.loads(body) if "json" in resp.headers.get("Content-Type", "") and body else body
            return resp.status, resp.headers, parsed


async def test_unclean_text_on_staff_routes_is_400_and_stores_nothing(gateway, db, http_client):
    await add_pbb(db, year=YEAR, due=FAR_DUE)
    bank = http_client()
    assert_business(await bank.pbb_payment("p1", **pbb_body()), "00")
    payment_id = await db.fetchval("SELECT id FROM payments")
    add_user(gateway, "budi", "support")
    token = token_for(gateway, "budi")
    bearer = {"Authorization": f"Bearer {token}"}
    before = await business_counts(db)

    wrongly_accepted = []
    for query in ("before=9223372036854775808", "before=99999999999999999999", "before=0", "before=-1",
                  "before=1e3", "before=%EF%BC%91", "nop=%00", "nop=32750100010010001%FF", "ntpd=%C3%28",
                  "rrn=abc%0Adef", "stan=1234567", "bank=%7F", "date=20261123", "date=2026-W47-1", "rc=%FF",
                  "rc=000", "registration_number=" + "1" * 33):
        answer = await staff_call(gateway, "GET", f"/v1/transactions?{query}", bearer)
        if answer[0] != 400:
            wrongly_accepted.append((query, answer[0]))
            continue
        assert_raw_problem((answer[0], {k.lower(): v for k, v in answer[1].items()}, answer[2]), 400, "30")
    assert wrongly_accepted == []
    status, _, found = await staff_call(gateway, "GET", "/v1/transactions?before=9223372036854775807", bearer)
    assert status == 200 and [t["id"] for t in found["transactions"]] == [payment_id]

    notes = f"/v1/transactions/{payment_id}/notes"
    for note in ("x\x00y", "\ud800", "N" * 2001, "bell\x07", "   "):
        data = json.dumps({"note": note}).encode()
        status, _, problem = await staff_call(gateway, "POST", notes, {**bearer, "Content-Type": "application/json"},
                                              data=data)
        assert (status, problem["response_code"]) == (400, "30"), (note, problem)
    status, _, problem = await staff_call(gateway, "POST", notes, {**bearer, "Content-Type": "application/json"},
                                          data=b'{"note": "' + b"\xff" * 4 + b'"}')
    assert status == 400
    assert await business_counts(db) == before

    # Headers: a bearer token or a cookie that is not UTF-8 is refused before it is looked up.
    for headers in ([("Authorization", b"Bearer " + token.encode() + b"\xff")],
                    [("Cookie", b"gw_session=\xc3\x28abc")], [("X-CSRF-Token", b"abc\x7f")]):
        assert_raw_problem(await raw_call(gateway, "GET", "/v1/staff/me", headers), 400, "30")

    # Sign-in bodies: text rules, and nesting that would have been a 500.
    for data in (b'{"username": "bu\\u0000di", "password": "x"}', b'{"username": "\\udc80", "password": "x"}',
                 b'{"username": "budi", "password": "pass\\u001bword-long"}',
                 b'{"username": ' + b"[" * 50_000 + b"]" * 50_000 + b', "password": "x"}',
                 b"[" * 100_000, b'{"username": "budi", "password": "' + b"\xff" * 8 + b'"}'):
        status, _, problem = await staff_call(gateway, "POST", "/v1/staff/session",
                                              {"Content-Type": "application/json"}, data=data)
        assert (status, problem["response_code"]) == (400, "30"), (data[:40], problem)
    assert await db.fetchval("SELECT count(*) FROM signin_failures") == 0
    assert await business_counts(db) == before
    await message_log_alive(db, bank)


async def test_failed_sign_ins_are_limited_per_username_and_per_address(make_gateway, db, http_client):
    gw = await start(make_gateway)
    other = await start(make_gateway)  # a second instance over the same database
    await add_pbb(db, year=YEAR, due=FAR_DUE)
    add_user(gw, "ani", "support")
    add_user(gw, "budi", "support")

    async def sign_in(instance, user: str, password: str):
        return await staff_call(instance, "POST", "/v1/staff/session", json={"username": user, "password": password})

    for n in range(5):
        status, _, problem = await sign_in(gw if n % 2 else other, "ani", "wrong password 123")
        assert status == 401, problem
    # The sixth attempt, right password included, on either instance: 429 until the window has passed.
    for instance in (gw, other):
        status, headers, problem = await sign_in(instance, "ani", PASSWORD)
        assert_raw_problem((status, {k.lower(): v for k, v in headers.items()}, problem), 429, None)
        assert 1 <= int(headers["Retry-After"]) <= 15 * 60
    assert await db.fetchval("SELECT count(*) FROM staff_sessions") == 0
    # Another username from the same address is not held up by ani's failures.
    status, _, _ = await sign_in(gw, "budi", PASSWORD)
    assert status == 200

    audit = [(r["actor"], r["action"], r["target"]) for r in
             await db.fetch("SELECT actor, action, target FROM audit_log WHERE action LIKE 'session.%' ORDER BY id")]
    assert audit == [("ani", "session.login_failed", "ani")] * 5 + [("ani", "session.login_refused", "ani")] * 2 + [
        ("budi", "session.login", "budi")]
    refused = await db.fetch("SELECT detail, source FROM audit_log WHERE action = 'session.login_refused'")
    assert [(json.loads(r["detail"])["scope"], r["source"]) for r in refused] == [("username", "127.0.0.1")] * 2
    assert await db.fetchval("SELECT count(*) FROM signin_failures") == 5

    # Per address: 20 failures from 127.0.0.1 in all (5 for ani, 15 for names that do not exist).
    for n in range(15):
        status, _, _ = await sign_in(gw, f"nobody{n}", "wrong password 123")
        assert status == 401
    status, headers, _ = await sign_in(other, "budi", PASSWORD)
    assert status == 429 and int(headers["Retry-After"]) >= 1
    scope = await db.fetchval("SELECT detail->>'scope' FROM audit_log WHERE action = 'session.login_refused'"
                              " ORDER BY id DESC LIMIT 1")
    assert scope == "address"

    # The wait is until the oldest failure that holds the count at the limit leaves the window.
    await db.execute("UPDATE signin_failures SET at = now() - interval '14 minutes'")
    status, headers, _ = await sign_in(gw, "budi", PASSWORD)
    assert status == 429 and 1 <= int(headers["Retry-After"]) <= 60
    await db.execute("UPDATE signin_failures SET at = now() - interval '16 minutes'")
    status, _, _ = await sign_in(gw, "budi", PASSWORD)
    assert status == 200
    status, _, _ = await sign_in(other, "ani", PASSWORD)
    assert status == 200
    assert await db.fetchval("SELECT count(*) FROM signin_failures") == 20
    await message_log_alive(db, http_client(gw=gw))


async def test_a_success_starts_a_usernames_count_afresh(gateway, db):
    add_user(gateway, "ani", "support")

    async def sign_in(password: str) -> int:
        return (await staff_call(gateway, "POST", "/v1/staff/session",
                                 json={"username": "ani", "password": password}))[0]

    assert [await sign_in("wrong password 123") for _ in range(4)] == [401] * 4
    assert await sign_in(PASSWORD) == 200
    assert [await sign_in("wrong password 123") for _ in range(5)] == [401] * 5
    assert await sign_in(PASSWORD) == 429


async def test_staff_sessions_expire_after_the_idle_time_and_each_use_extends_them(make_gateway, db):
    gw = await start(make_gateway, extra="[staff]\nsession_idle_minutes = 20\n")
    add_user(gw, "ani", "support")
    status, headers, body = await staff_call(gw, "POST", "/v1/staff/session",
                                             json={"username": "ani", "password": PASSWORD})
    assert status == 200
    assert "Max-Age" not in headers["Set-Cookie"] and "expires" not in headers["Set-Cookie"].lower()
    session = headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    cookie = {"Cookie": f"gw_session={session}"}
    idle = await db.fetchval("SELECT expires_at - created_at FROM staff_sessions")
    assert idle.total_seconds() == 20 * 60

    # Each use moves the end to the idle time from now.
    await db.execute("UPDATE staff_sessions SET expires_at = now() + interval '1 minute'")
    assert (await staff_call(gw, "GET", "/v1/staff/me", cookie))[0] == 200
    left = await db.fetchval("SELECT extract(epoch FROM expires_at - now()) FROM staff_sessions")
    assert 18 * 60 < left <= 20 * 60
    # Never beyond 12 hours after sign-in.
    await db.execute("UPDATE staff_sessions SET created_at = now() - interval '11 hours 55 minutes'")
    assert (await staff_call(gw, "GET", "/v1/staff/me", cookie))[0] == 200
    assert await db.fetchval("SELECT expires_at = created_at + interval '12 hours' FROM staff_sessions")
    # Unused for longer than the idle time: ended.
    await db.execute("UPDATE staff_sessions SET created_at = now() - interval '1 hour',"
                     " expires_at = now() - interval '1 second'")
    status, _, problem = await staff_call(gw, "GET", "/v1/staff/me", cookie)
    assert status == 401 and "response_code" not in problem
    assert await db.fetchval("SELECT expires_at < now() FROM staff_sessions")


# -- what the HTTP parser refuses --------------------------------------------------------------------------


async def test_parser_refusals_are_problem_details_never_echoed_nor_logged(gateway, db, http_client):
    await add_pbb(db, year=YEAR, due=FAR_DUE)
    bank = http_client()
    secret = SECRET.encode()
    head = b"GET /v1/staff/me HTTP/1.1\r\nHost: x\r\n"
    cases = [
        # A token file with CRLF line ends: a bare CR inside the header value.
        (400, head + b"Authorization: Bearer " + secret + b"\r\r\n\r\n"),
        (400, head + b"Authorization: Bearer " + secret + b"\rX-Other: 1\r\n\r\n"),
        # A NUL and a control byte in header values, a control byte in a header name.
        (400, head + b"Cookie: gw_session=" + secret + b"\x00\r\n\r\n"),
        (400, head + b"X-CSRF-Token: " + secret + b"\x01\r\n\r\n"),
        (400, head + b"X-Tok\x01en: " + secret + b"\r\n\r\n"),
        # Garbage request lines.
        (400, b"GET /v1/proofs/" + secret + b" HTTP/1.1 junk\r\nHost: x\r\n\r\n"),
        (400, secret + b"\r\n\r\n"),
        (400, b"GET /v1/proofs/" + secret + b"\x00 HTTP/1.1\r\nHost: x\r\n\r\n"),
        # Over max_head_bytes: one header line, many small ones, a long request line, a trickled head.
        (431, head + b"Authorization: Bearer " + secret + b"A" * 9000 + b"\r\n\r\n"),
        (431, head + b"".join(b"X-H%d: %s\r\n" % (n, secret) for n in range(300)) + b"\r\n"),
        (431, b"GET /v1/proofs/" + secret + b"A" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
        (431, [head] + [b"X-Chunk-%d: %s%s\r\n" % (n, secret, b"B" * 900) for n in range(12)] + [b"\r\n"]),
    ]
    for expected, data in cases:
        raw = await raw_exchange(gateway, data)
        status, headers, body = parse_answer(raw)
        assert status == expected, (data[:60], raw[:300])
        assert headers["content-type"].split(";")[0] == "application/problem+json", raw[:300]
        assert REQUEST_ID.match(headers["x-request-id"]), headers
        problem = json.loads(body)
        assert problem["status"] == expected and problem["title"], problem
        assert problem.get("response_code") == ("30" if expected == 400 else None), problem
        assert secret not in raw and SECRET[:12].encode() not in raw, raw
    await message_log_alive(db, bank)
    log = gateway.log()
    assert "refused by the parser" in log
    assert SECRET[:12] not in log


async def test_connection_limits(make_gateway, db, http_client):
    gw = await configured(make_gateway, "head_timeout_s = 1\nidle_timeout_s = 60\n")
    await add_pbb(db, year=YEAR, due=FAR_DUE)

    async def closed_within(reader, bound_s: float = 20.0) -> bytes:
        return await asyncio.wait_for(reader.read(), bound_s)  # a bound, not a measurement

    # A connection that sends nothing, and one that trickles a head: closed by the head deadline (the idle
    # time, 60 s, would be far beyond the bound), without an answer.
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.http_port)
    assert await closed_within(reader) == b""
    writer.close()
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.http_port)

    async def trickle() -> None:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        for _ in range(100):
            await asyncio.sleep(0.2)
            writer.write(b"X-Slow: 1\r\n")

    task = asyncio.create_task(trickle())
    try:
        assert await closed_within(reader) == b""
    finally:
        task.cancel()
        writer.close()

    # A keep-alive connection idle for longer than the head deadline between requests is still served:
    # the deadline runs from a head's first byte, the idle time from the last answer.
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.http_port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    first = await asyncio.wait_for(reader.readuntil(b'{"status": "ok"}'), 10)
    assert first.startswith(b"HTTP/1.1 200")
    await asyncio.sleep(2.5)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    second = await closed_within(reader)
    assert second.startswith(b"HTTP/1.1 200"), second
    writer.close()

    # The idle time between requests, on an instance where it is short.
    short = await configured(make_gateway, "head_timeout_s = 30\nidle_timeout_s = 1\n")
    reader, writer = await asyncio.open_connection("127.0.0.1", short.http_port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = await closed_within(reader)
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b'{"status": "ok"}'), answer
    writer.close()
    await message_log_alive(db, http_client(gw=gw))




async def test_a_body_the_parser_cannot_read_is_answered_400(gateway, db, http_client):
    await add_pbb(db, year=YEAR, due=FAR_DUE)
    bank = http_client()
    pay = "/v1/pbb/payments"
    before = await business_counts(db)
    chunked = signed(bank, "POST", pay, b"") + [("Idempotency-Key", "k1"), ("Transfer-Encoding", "chunked")]
    bad_chunks = (b"5\r\nabcde\r\nZZ\r\n\r\n", b"zz\r\n", b"5\r\nabcdefgh\r\n0\r\n\r\n")
    for chunks in bad_chunks:
        # In one piece with the head (the parser refuses the request), and after it, when the request is
        # already being handled (its body read fails instead of waiting forever).
        status, headers, body = parse_answer(await raw_exchange(gateway, request_bytes("POST", pay, chunked) + chunks))
        assert_raw_problem((status, headers, json.loads(body)), 400, "30")
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.http_port)
        try:
            writer.write(request_bytes("POST", pay, chunked))
            await writer.drain()
            await asyncio.sleep(0.3)
            writer.write(chunks)
            raw = await asyncio.wait_for(reader.read(), 10)
        finally:
            writer.close()
        status, headers, body = parse_answer(raw)
        assert (status, json.loads(body)["response_code"]) == (400, "30"), raw
        assert raw.count(b"HTTP/1.") == 1, raw  # one answer, then the connection is closed
    for extra in ([("Content-Length", "abc")], [("Content-Length", "5"), ("Content-Length", "6")]):
        headers = signed(bank, "POST", pay, b"") + [("Idempotency-Key", "k2")] + extra
        assert_raw_problem(await raw_call(gateway, "POST", pay, headers, b""), 400, "30")
    assert await business_counts(db) == before
    await message_log_alive(db, bank)
