"""What every service call needs: the pool, the clock, the region's rules and the bank list."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import asyncpg

from gateway.clock import Clock
from gateway.config import BankConfig, Config
from gateway.domain.business_day import business_date, local_now
from gateway.domain.codes import RC
from gateway.domain.nop import in_region
from gateway.domain.penalty import PenaltyPolicy
from gateway.domain.relief import ReliefProgram
from gateway.proofs.keys import KeyStore
from gateway.service.bill_queue import BillQueue
from gateway.service.inquiry_recorder import InquiryRecorder
from gateway.store.db import work_deadline_s


@dataclass
class ServiceContext:
    pool: asyncpg.Pool
    clock: Clock
    config: Config
    banks: dict[str, BankConfig] = field(default_factory=dict)
    # Signs payment proofs; without one (tests of the money rules alone), payments carry no proof.
    keys: KeyStore | None = None
    bills: BillQueue | None = None
    # The relief programs in force: the configuration's, replaced whole on SIGHUP like the bank list.
    relief: tuple[ReliefProgram, ...] | None = None
    # Writes approved inquiries' quotes and keys behind their answers (``gateway serve``); without one (the
    # command line, tests of the rules) each inquiry writes its own before it answers.
    inquiries: InquiryRecorder | None = None

    def __post_init__(self) -> None:
        if not self.banks:
            self.banks = {b.code: b for b in self.config.banks}
        if self.relief is None:
            self.relief = self.config.relief
        if self.bills is None:
            self.bills = BillQueue(self.config.database.max_waiters_per_bill)

    @property
    def policy(self) -> PenaltyPolicy:
        return self.config.penalty_pbb

    @property
    def programs(self) -> tuple[ReliefProgram, ...]:
        return self.relief or ()

    @property
    def region_code(self) -> str:
        return self.config.region.code

    @property
    def region_name(self) -> str:
        return self.config.region.name

    @property
    def acquire_timeout_s(self) -> float:
        return self.config.database.acquire_timeout_ms / 1000

    @property
    def request_budget_s(self) -> float:
        """How long a request may take before it is answered RC 91: a connection, one statement's worth of
        work, and a margin for Python (1.8 s with the defaults: the contract's bound is 2 s)."""
        return self.acquire_timeout_s + work_deadline_s(self.config.database)

    @property
    def quote_ttl(self) -> timedelta:
        return timedelta(minutes=self.config.region.quote_ttl_minutes)

    @staticmethod
    def clock_skew_s(now: datetime) -> float:
        """How far the gateway's clock (``now``, from ``clock.now()``) is from real time: the offset that
        shifts the database's clock where a rule is measured there (quotes)."""
        return (now - datetime.now(UTC)).total_seconds()

    def business_date(self, now: datetime) -> date:
        return business_date(now, self.config.region.tz, self.config.region.cutoff_time)

    def local_date(self, now: datetime) -> date:
        return local_now(now, self.config.region.tz).date()

    def refusal(self, bank: str | None, tax: str | None, nop: str | None = None) -> RC | None:
        """The opening checks of every request once its fields have parsed (else 30), in the contract's
        order: the bank may not send it (05), then a NOP outside this region (14)."""
        if refusal := self.bank_refusal(bank, tax):
            return refusal
        if nop is not None and not in_region(nop, self.region_code):
            return RC.BILL_NOT_FOUND
        return None

    def bank_refusal(self, bank: str | None, tax: str | None) -> RC | None:
        """RC 05 for an unknown or disabled bank, or a tax the bank may not collect."""
        if bank is None:
            return None
        settings = self.banks.get(bank)
        if settings is None or not settings.enabled or (tax is not None and not settings.allows_tax(tax)):
            return RC.DO_NOT_HONOUR
        return None
