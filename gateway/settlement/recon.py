"""Reconciliation of a bank's file (spec/operations.md "Bank reconciliation file", "Reconciliation report").

The bank's rows for (DATE, BANK) are matched to the gateway's payments of that date and bank: by NTPD,
else by (bank_code, stan, transmission_datetime), else by (bank_code, rrn, business_date). Each bank row
and each unlisted payment gets one report row in one of five classes; anything but ``matched`` is kept as
an open reconciliation item, keyed so that importing the same file again opens nothing new.

Two cases the class table leaves open, decided here: a bank row saying ``reversed`` for which the gateway
holds a tombstone (or a reversed payment the bank does not list) is ``matched`` — both sides agree no money
moved; a ``reversed`` bank row with neither payment nor tombstone is ``missing_at_gateway``.
"""
from __future__ import annotations

import csv
import datetime
import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass

import asyncpg

from gateway.bills.importer import ImportFileError, read_header
from gateway.settlement.csvout import to_csv
from gateway.settlement.errors import ReconFileError
from gateway.store import recon as store

FILE_COLUMNS = ("business_date", "bank_code", "ntpd", "ntb", "rrn", "stan", "transmission_datetime", "tax",
                "bill_id", "amount", "status")
REPORT_COLUMNS = ("class", "ntpd", "bank_code", "tax", "bill_id", "gateway_amount", "bank_amount",
                  "gateway_status", "bank_status", "line")
CLASSES = ("matched", "amount_mismatch", "status_mismatch", "missing_at_gateway", "missing_at_bank")


@dataclass(frozen=True)
class BankRow:
    line: int
    business_date: datetime.date
    bank_code: str
    ntpd: str
    ntb: str
    rrn: str
    stan: str
    transmitted: str
    tax: str
    bill_id: str
    amount: int
    status: str

    def key(self) -> str:
        if self.ntpd:
            ident = self.ntpd
        elif self.stan:
            ident = f"{self.stan}/{self.transmitted}"
        else:
            ident = f"rrn:{self.rrn}"
        return f"bank:{ident}|{self.tax}|{self.bill_id}|{self.amount}|{self.status}"


@dataclass(frozen=True)
class ReportRow:
    cls: str
    ntpd: str
    bank_code: str
    tax: str
    bill_id: str
    gateway_amount: int | None
    bank_amount: int | None
    gateway_status: str
    bank_status: str
    line: int | None
    item_key: str

    def values(self) -> tuple:
        return (self.cls, self.ntpd, self.bank_code, self.tax, self.bill_id, self.gateway_amount,
                self.bank_amount, self.gateway_status, self.bank_status, self.line)


@dataclass(frozen=True)
class ReconResult:
    rows: tuple[ReportRow, ...]
    counts: dict[str, int]
    new_items: int
    report_id: int

    @property
    def csv(self) -> str:
        return to_csv(REPORT_COLUMNS, (r.values() for r in self.rows))

    @property
    def all_matched(self) -> bool:
        return all(r.cls == "matched" for r in self.rows)

    @property
    def exit_code(self) -> int:
        return 0 if self.all_matched else 1

    def summary(self) -> str:
        parts = ", ".join(f"{c} {self.counts.get(c, 0)}" for c in CLASSES)
        return f"{parts}; new items {self.new_items}"


# ---------------------------------------------------------------------------------------------- parsing

def _fail(path: str, line: int, column: str, reason: str) -> ReconFileError:
    return ReconFileError(f"{path}:{line}: {column}: {reason}")


def _parse_row(path: str, line: int, v: dict[str, str], day: datetime.date, bank: str) -> BankRow:
    def bad(column: str, reason: str) -> ReconFileError:
        return _fail(path, line, column, reason)

    try:
        row_date = datetime.date.fromisoformat(v["business_date"]) if re.fullmatch(
            r"\d{4}-\d{2}-\d{2}", v["business_date"]) else None
    except ValueError:
        row_date = None
    if row_date is None:
        raise bad("business_date", f"not a date YYYY-MM-DD: {v['business_date']!r}")
    if row_date != day:
        raise bad("business_date", f"{row_date.isoformat()} is not the date being reconciled ({day.isoformat()})")
    if v["bank_code"] != bank:
        raise bad("bank_code", f"{v['bank_code']!r} is not the bank being reconciled ({bank})")
    if v["ntpd"] and not re.fullmatch(r"\d{18}", v["ntpd"]):
        raise bad("ntpd", f"must be 18 digits or empty: {v['ntpd']!r}")
    if len(v["ntb"]) > 32:
        raise bad("ntb", "longer than 32 characters")
    if len(v["rrn"]) > 12:
        raise bad("rrn", "longer than 12 characters")
    if v["stan"] and not re.fullmatch(r"\d{6}", v["stan"]):
        raise bad("stan", f"must be 6 digits or empty: {v['stan']!r}")
    if v["transmission_datetime"] and not re.fullmatch(r"\d{10}", v["transmission_datetime"]):
        raise bad("transmission_datetime", f"must be MMDDhhmmss or empty: {v['transmission_datetime']!r}")
    if bool(v["stan"]) != bool(v["transmission_datetime"]):
        raise bad("stan" if not v["stan"] else "transmission_datetime",
                  "stan and transmission_datetime go together")
    if not (v["ntpd"] or v["stan"] or v["rrn"]):
        raise bad("ntpd", "a row needs an ntpd, a stan with transmission_datetime, or an rrn")
    if v["tax"] not in ("PBB", "BPHTB"):
        raise bad("tax", f"must be PBB or BPHTB: {v['tax']!r}")
    pattern = r"\d{22}" if v["tax"] == "PBB" else r"\d{14}"
    if not re.fullmatch(pattern, v["bill_id"]):
        raise bad("bill_id", "must be NOP+year (22 digits)" if v["tax"] == "PBB"
                  else "must be the registration number (14 digits)")
    if not re.fullmatch(r"\d{1,12}", v["amount"]) or int(v["amount"]) == 0:
        raise bad("amount", f"must be a positive whole number of rupiah (at most 12 digits): {v['amount']!r}")
    if v["status"] not in ("paid", "reversed"):
        raise bad("status", f"must be paid or reversed: {v['status']!r}")
    return BankRow(line, row_date, v["bank_code"], v["ntpd"], v["ntb"], v["rrn"], v["stan"],
                   v["transmission_datetime"], v["tax"], v["bill_id"], int(v["amount"]), v["status"])


def parse_file(path: str, data: bytes, day: datetime.date, bank: str) -> list[BankRow]:
    """The bank rows of ``data`` (the file's bytes); ReconFileError naming line and column otherwise."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ReconFileError(f"{path}:{line}: not UTF-8 "
                             f"(byte 0x{data[exc.start]:02x})") from None
    reader = csv.reader(text.splitlines(keepends=True), strict=True)
    try:
        header, positions = read_header(path, reader, FILE_COLUMNS)
    except ImportFileError as exc:
        raise ReconFileError(str(exc)) from None
    rows: list[BankRow] = []
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise ReconFileError(f"{path}:{reader.line_num}: malformed CSV: {exc}") from None
        line = reader.line_num
        if not fields or fields == [""]:
            continue
        if len(fields) != len(header):
            raise ReconFileError(f"{path}:{line}: row: has {len(fields)} fields, the header has {len(header)}")
        values = {c: fields[i].strip() for c, i in zip(FILE_COLUMNS, positions)}
        rows.append(_parse_row(path, line, values, day, bank))
    return rows


# --------------------------------------------------------------------------------------------- matching

def classify(rows: list[BankRow], payments: list, tombstones: set[tuple[str, str]], bank: str) -> list[ReportRow]:
    by_ntpd = {p["ntpd"].strip(): p for p in payments}
    by_origin = {(p["stan"], p["transmitted"]): p for p in payments if p["stan"]}
    by_rrn: dict[str, list] = {}
    for p in payments:
        if p["rrn"]:
            by_rrn.setdefault(p["rrn"], []).append(p)
    used: set[int] = set()
    report: list[ReportRow] = []

    def free(p):
        return p if p is not None and p["id"] not in used else None

    for row in rows:
        if row.ntpd:
            p = free(by_ntpd.get(row.ntpd))
        elif row.stan:
            p = free(by_origin.get((row.stan, row.transmitted)))
        else:
            p = None
        if p is None and not row.ntpd and row.rrn:
            p = next((c for c in by_rrn.get(row.rrn, []) if c["id"] not in used), None)
        if p is None:
            tombstoned = bool(row.stan) and (row.stan, row.transmitted) in tombstones
            if row.status == "reversed" and tombstoned:
                report.append(ReportRow("matched", row.ntpd, bank, row.tax, row.bill_id, None, row.amount,
                                        "reversed", row.status, row.line, row.key()))
            else:
                report.append(ReportRow("missing_at_gateway", row.ntpd, bank, row.tax, row.bill_id, None,
                                        row.amount, "", row.status, row.line, row.key()))
            continue
        used.add(p["id"])
        gateway_status = "reversed" if p["reversed"] else "paid"
        if gateway_status != row.status:
            cls = "status_mismatch"
        elif p["total"] != row.amount:
            cls = "amount_mismatch"
        else:
            cls = "matched"
        ntpd = p["ntpd"].strip()
        report.append(ReportRow(cls, ntpd, bank, p["tax"], p["bill_key"], p["total"], row.amount,
                                gateway_status, row.status, row.line, f"ntpd:{ntpd}"))
    for p in payments:
        if p["id"] in used:
            continue
        ntpd = p["ntpd"].strip()
        if p["reversed"]:  # neither side has money standing for it
            report.append(ReportRow("matched", ntpd, bank, p["tax"], p["bill_key"], p["total"], None,
                                    "reversed", "", None, f"ntpd:{ntpd}"))
        else:
            report.append(ReportRow("missing_at_bank", ntpd, bank, p["tax"], p["bill_key"], p["total"], None,
                                    "paid", "", None, f"ntpd:{ntpd}"))
    return report


async def reconcile(conn: asyncpg.Connection, day: datetime.date, bank: str, path: str, data: bytes) -> ReconResult:
    """Parse, match, persist the report and its open items; ReconFileError for an unusable file."""
    rows = parse_file(path, data, day, bank)
    payments = await store.payments_of_bank(conn, day, bank)
    tombstones = await store.tombstone_origins(conn, bank)
    report = classify(rows, list(payments), tombstones, bank)
    counts = Counter(r.cls for r in report)
    counts_json = json.dumps({c: counts.get(c, 0) for c in CLASSES})
    csv_text = to_csv(REPORT_COLUMNS, (r.values() for r in report))
    items = (store.ReconItem(r.cls, r.item_key, r.ntpd, r.tax, r.bill_id, r.gateway_amount, r.bank_amount, r.gateway_status,
                             r.bank_status, r.line) for r in report if r.cls != "matched")
    report_id, new_items = await store.save_report(conn, day, bank, path, hashlib.sha256(data).digest(), counts_json,
                                                   csv_text, items)
    return ReconResult(tuple(report), dict(counts), new_items, report_id)


def read_file(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise ReconFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
