"""What every service call needs: the pool, the clock, the region's rules and the bank list."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import asyncpg

from gateway.clock import Clock
from gateway.config import BankConfig, Config
from gateway.domain.business_day import business_date, local_now
from gateway.domain.codes import RC
from gateway.domain.penalty import PenaltyPolicy
from gateway.proofs.keys import KeyStore


@dataclass
class ServiceContext:
    pool: asyncpg.Pool
    clock: Clock
    config: Config
    banks: dict[str, BankConfig] = field(default_factory=dict)
    # Signs payment proofs; without one (tests of the money rules alone), payments carry no proof.
    keys: KeyStore | None = None

    def __post_init__(self) -> None:
        if not self.banks:
            self.banks = {b.code: b for b in self.config.banks}

    @property
    def policy(self) -> PenaltyPolicy:
        return self.config.penalty_pbb

    @property
    def region_code(self) -> str:
        return self.config.region.code

    @property
    def region_name(self) -> str:
        return self.config.region.name

    @property
    def acquire_timeout_s(self) -> float:
        return self.config.database.connect_timeout_ms / 1000

    @property
    def quote_ttl(self) -> timedelta:
        return timedelta(minutes=self.config.region.quote_ttl_minutes)

    def business_date(self, now: datetime) -> date:
        return business_date(now, self.config.region.tz, self.config.region.cutoff_time)

    def local_date(self, now: datetime) -> date:
        return local_now(now, self.config.region.tz).date()

    def bank_refusal(self, bank: str | None, tax: str | None) -> RC | None:
        """RC 05 for an unknown or disabled bank, or a tax the bank may not collect."""
        if bank is None:
            return None
        settings = self.banks.get(bank)
        if settings is None or not settings.enabled or (tax is not None and not settings.allows_tax(tax)):
            return RC.DO_NOT_HONOUR
        return None
