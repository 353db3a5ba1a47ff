"""``gateway bank-sim …``: inquiry, pay, reverse, echo and load over ISO 8583, as a bank would."""
from __future__ import annotations

import argparse
import asyncio
import ssl
import sys

from gateway.banksim.client import IsoClient
from gateway.banksim.load import LoadPlan, run_load
from gateway.banksim.render import render_answer
from gateway.config import Config, parse_listen
from gateway.runtime import run_fast


class BankSimError(Exception):
    pass


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", metavar="FILE", help="configuration file (TOML)")
        p.add_argument("--host", help="gateway address (default: from [iso8583] listen)")
        p.add_argument("--port", type=int, help="gateway port (default: from [iso8583] listen)")
        p.add_argument("--bank", help="bank code, field 32 (default: the first configured bank, else 110)")
        p.add_argument("--framing", choices=["ascii4", "binary2"], help="default: the bank's configuration")
        p.add_argument("--mac-key", help="hex MAC key (default: the bank's configuration)")
        p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for an answer")
        p.add_argument("--http", action="store_true", help="use the JSON/HTTP API (signed) instead of ISO 8583")
        p.add_argument("--url", help="HTTP base URL (default: from [http] listen)")
        p.add_argument("--secret", help="the bank's API secret (default: the bank's api_secret)")
        p.add_argument("--tls", action="store_true",
                       help="ISO 8583 over TLS, the gateway's certificate checked against the system's CAs")
        p.add_argument("--tls-ca", metavar="FILE", help="ISO 8583 over TLS, the gateway's certificate checked"
                       " against this CA (PEM) instead")
        p.add_argument("--tls-cert", metavar="FILE", help="this bank's TLS client certificate (PEM), with --tls-key")
        p.add_argument("--tls-key", metavar="FILE", help="the client certificate's private key (PEM)")

    inquiry = sub.add_parser("inquiry", help="0200 inquiry")
    inquiry.add_argument("tax", choices=["pbb", "bphtb"])
    inquiry.add_argument("bill", help="PBB: NOP (any form); BPHTB: registration number")
    inquiry.add_argument("tax_year", nargs="?", default="", help="PBB tax year")
    common(inquiry)

    pay = sub.add_parser("pay", help="0200 payment")
    pay.add_argument("tax", choices=["pbb", "bphtb"])
    pay.add_argument("bill")
    pay.add_argument("args", nargs="+", metavar="[TAX_YEAR] AMOUNT", help="PBB: TAX_YEAR AMOUNT; BPHTB: AMOUNT")
    pay.add_argument("--ntb", help="bank reference, field 48")
    pay.add_argument("--channel", default="6011", help="field 18 (6010 teller, 6011 ATM, …)")
    common(pay)

    rev = sub.add_parser("reverse", help="0400 reversal of a payment")
    rev.add_argument("tax", choices=["pbb", "bphtb"])
    rev.add_argument("bill")
    rev.add_argument("args", nargs="+", metavar="[TAX_YEAR] AMOUNT")
    rev.add_argument("--ntpd", help="the payment's NTPD (field 47)")
    rev.add_argument("--stan", help="the payment's STAN (field 90)")
    rev.add_argument("--transmitted", help="the payment's field 7, MMDDhhmmss (field 90)")
    rev.add_argument("--repeat", action="store_true", help="send as 0401 (repeat)")
    common(rev)

    echo = sub.add_parser("echo", help="0800 echo test (or --code 001 sign-on, 002 sign-off, 201 cut-over)")
    echo.add_argument("--code", default="301", choices=["001", "002", "201", "301"])
    common(echo)

    load = sub.add_parser("load", help="load generator: throughput and latency percentiles")
    load.add_argument("--concurrency", type=int, default=16)
    load.add_argument("--connections", type=int, default=4)
    load.add_argument("--duration", type=float, default=10.0, help="seconds (ignored with --count)")
    load.add_argument("--count", type=int, help="number of operations instead of a duration")
    load.add_argument("--mix", default="inquiry=4,payment=5,reversal=1", help="operation weights")
    load.add_argument("--tax", choices=["pbb", "bphtb", "both"], default="both")
    load.add_argument("--bills", type=int, default=20000, help="unpaid bills to draw from the database")
    load.add_argument("--record", metavar="FILE", help="append every approved payment and reversal")
    load.add_argument("--json", action="store_true", help="print the report as JSON")
    common(load)


def _pbb_bill(bill: str, tax_year: str) -> str:
    digits = "".join(c for c in bill if c not in ".- ")
    return digits + tax_year


def _split_amount(tax: str, bill: str, args: list[str]) -> tuple[str, int]:
    try:
        if tax == "pbb":
            if len(args) != 2:
                raise BankSimError("PBB needs TAX_YEAR AMOUNT")
            return _pbb_bill(bill, args[0]), int(args[1])
        if len(args) != 1:
            raise BankSimError("BPHTB needs AMOUNT")
        return bill, int(args[0])
    except ValueError:
        raise BankSimError(f"amount must be whole rupiah: {args[-1]!r}") from None


def _wants_tls(args: argparse.Namespace) -> bool:
    """Any of ``--tls``/``--tls-ca``/``--tls-cert``/``--tls-key`` means TLS."""
    return bool(args.tls or args.tls_ca or args.tls_cert or args.tls_key)


def _tls(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The TLS context the ``--tls…`` options ask for, or None."""
    if not _wants_tls(args):
        return None
    if bool(args.tls_cert) != bool(args.tls_key):
        raise BankSimError("--tls-cert and --tls-key go together")
    try:
        context = ssl.create_default_context(cafile=args.tls_ca)
        if args.tls_cert:
            context.load_cert_chain(args.tls_cert, args.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise BankSimError(f"TLS: {exc}") from None
    return context


def _client(config: Config, args: argparse.Namespace) -> IsoClient:
    bank_code = args.bank or (config.banks[0].code if config.banks else "110")
    bank = config.bank(bank_code)
    host, port = parse_listen(bank.iso_listen if bank and bank.iso_listen else config.iso8583.listen)
    framing_name = args.framing or (bank.framing if bank else "ascii4")
    mac_hex = args.mac_key if args.mac_key is not None else (bank.mac_key if bank else "")
    return IsoClient(args.host or host, args.port or port, bank=bank_code, framing_name=framing_name,
                     mac_key=bytes.fromhex(mac_hex) if mac_hex else None, timeout_s=args.timeout)


async def _one_http(config: Config, args: argparse.Namespace) -> int:
    import json
    import secrets

    from gateway.banksim.http_client import HttpBankClient
    from gateway.demo.quickstart import demo_serving_config

    if _wants_tls(args):  # refused before any certificate file is read
        raise BankSimError("--tls… are for ISO 8583; for the JSON API over TLS give --url https://…")
    # Without a configured bank, the demo bank that `gateway demo run` serves (and its published secret).
    config = demo_serving_config(config)
    bank_code = args.bank or config.banks[0].code
    bank = config.bank(bank_code)
    secret = args.secret if args.secret is not None else (bank.secret() if bank else "")
    host, port = parse_listen(config.http.listen)
    url = args.url or f"http://{host}:{port}"
    key = secrets.token_urlsafe(12)
    async with HttpBankClient(url, bank_code, secret, timeout_s=args.timeout) as client:
        try:
            if args.action == "inquiry":
                if args.tax == "pbb":
                    status, _, body = await client.pbb_inquiry(args.bill, args.tax_year)
                else:
                    status, _, body = await client.bphtb_inquiry(args.bill)
            elif args.action == "pay":
                bill, amount = _split_amount(args.tax, args.bill, args.args)
                channel = {"6010": "teller", "6011": "atm", "6012": "edc", "6013": "phone", "6014": "internet",
                           "6015": "kiosk", "6016": "autodebit", "6017": "mobile"}.get(args.channel, args.channel)
                ntb = args.ntb or f"NTB{key[:8]}"
                if args.tax == "pbb":
                    status, _, body = await client.pbb_payment(key, nop=bill[:18], tax_year=int(bill[18:]),
                                                               amount=amount, ntb=ntb, channel=channel)
                else:
                    status, _, body = await client.bphtb_payment(key, registration_number=bill, amount=amount,
                                                                 ntb=ntb, channel=channel)
            elif args.action == "reverse":
                _, amount = _split_amount(args.tax, args.bill, args.args)
                if not args.ntpd:
                    raise BankSimError("over HTTP a reversal names the payment: --ntpd")
                status, _, body = await client.reversal(key, ntpd=args.ntpd, amount=amount, reason="bank-sim")
            else:
                raise BankSimError("echo is an ISO 8583 message; over HTTP use GET /healthz")
        except OSError as exc:
            raise BankSimError(f"cannot reach {url}: {exc}") from None
    print(f"HTTP {status}", file=sys.stderr)
    print(json.dumps(body, indent=2, ensure_ascii=False) if not isinstance(body, bytes) else body[:200])
    return 0 if status == 200 and isinstance(body, dict) and body.get("response_code") == "00" else 1


async def _one(config: Config, args: argparse.Namespace) -> int:
    if args.http:
        return await _one_http(config, args)
    client = _client(config, args)
    tls = _tls(args)
    try:
        await client.connect(ssl=tls)
    except OSError as exc:
        raise BankSimError(f"cannot connect to {client.host}:{client.port}: {exc.strerror or exc}") from None
    try:
        if args.action == "inquiry":
            bill = _pbb_bill(args.bill, args.tax_year) if args.tax == "pbb" else args.bill
            request = client.inquiry(args.tax, bill)
        elif args.action == "pay":
            bill, amount = _split_amount(args.tax, args.bill, args.args)
            request = client.payment(args.tax, bill, amount, ntb=args.ntb, channel=args.channel)
        elif args.action == "reverse":
            bill, amount = _split_amount(args.tax, args.bill, args.args)
            if not args.ntpd and not (args.stan and args.transmitted):
                raise BankSimError("reverse needs --ntpd, or --stan and --transmitted of the payment")
            original = client.payment(args.tax, bill, amount, stan=args.stan or "000000")
            original["7"] = args.transmitted or "0000000000"
            request = client.reversal(original, ntpd=args.ntpd, repeat=args.repeat)
        else:
            request = client.network(args.code)
        print(f"sent {request['t']} STAN {request['11']} field 7 {request['7']}", file=sys.stderr)
        try:
            answer = await client.request(request)
        except asyncio.TimeoutError:
            raise BankSimError(f"no answer within {args.timeout:g} s") from None
        except ConnectionError as exc:
            raise BankSimError(str(exc)) from None
        print(render_answer(answer))
        return 0 if answer.get("39") == "00" else 1
    finally:
        await client.close()


async def _load(config: Config, args: argparse.Namespace) -> int:
    from gateway.banksim.bills import unpaid_bills

    tls = _tls(args)  # a wrong file fails before the database is asked for bills

    try:
        mix = {k.strip(): float(v) for k, v in (part.split("=") for part in args.mix.split(","))}
    except ValueError:
        raise BankSimError(f"--mix: expected op=weight,…: {args.mix!r}") from None
    if set(mix) - {"inquiry", "payment", "reversal"} or not any(mix.values()):
        raise BankSimError("--mix: operations are inquiry, payment, reversal")
    if args.concurrency < 1 or args.connections < 1:
        raise BankSimError("--concurrency and --connections must be at least 1")
    bills = await unpaid_bills(config, args.tax, args.bills)
    if not bills:
        raise BankSimError("no unpaid bills in the database (run: gateway demo seed)")
    print(f"load: {len(bills)} unpaid bills, {args.concurrency} workers on {args.connections} connection(s)",
          file=sys.stderr)
    client = _client(config, args)
    plan = LoadPlan(concurrency=args.concurrency, connections=args.connections,
                    duration_s=None if args.count else args.duration, count=args.count, mix=mix,
                    record=args.record)
    try:
        report = await run_load(client.host, client.port, bank=client.bank, framing_name=client.framing,
                                mac_key=client.mac_key, bills=bills, plan=plan, as_json=args.json,
                                timeout_s=args.timeout, tls=tls)
    except OSError as exc:
        raise BankSimError(f"cannot connect to {client.host}:{client.port}: {exc.strerror or exc}") from None
    return 0 if not report.errors else 1


def run(config: Config, args: argparse.Namespace) -> int:
    return run_fast(_load(config, args) if args.action == "load" else _one(config, args))
