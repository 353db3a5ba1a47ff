"""``gateway demo seed``: a realistic synthetic region (Kota Bekasi by default) for demos and load tests.

N tax objects (NOPs) spread over the real kecamatan and kelurahan of Kota Bekasi, each with PBB-P2
bills for the five tax years ending at the current year (Asia/Jakarta), some of them paid outside
the gateway and a few cancelled; BPHTB registrations for about 5% of the objects. Same seed and same
day, same data: the random generator is seeded and consumed in a fixed order. Rows are loaded with the
bill importer's COPY + upsert (gateway.bills.loader), so seeding again updates instead of failing, and
bills with an active gateway payment keep their payment state.

The first object (the lowest NOP) has its current-year bill unpaid and payable, and the previous year
unpaid too (arrears with a penalty), so a README can show it.
"""
from __future__ import annotations

import datetime
import math
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TextIO
from zoneinfo import ZoneInfo

import asyncpg

from gateway.bills.loader import bulk_transaction, load_rows
from gateway.demo import regions
from gateway.domain.nop import display_nop
from gateway.domain.sspd import make_registration

TIMEZONE = ZoneInfo("Asia/Jakarta")
YEARS = 5
NJOPTKP = 10_000_000            # PBB: NJOP not taxed
PBB_MINIMUM = 20_000            # smallest PBB assessment
NPOPTKP = 80_000_000            # BPHTB: acquisition value not taxed
BPHTB_RATE_PERCENT = 5
BPHTB_MINIMUM = 100_000
BPHTB_SHARE = 0.05
# Probability that a bill of a given age (0 = current year) was already paid outside the gateway.
PAID_BY_AGE = (0.30, 0.72, 0.80, 0.86, 0.90)
CANCELLED = 0.008
NON_PAYERS = 0.06               # objects whose owners pay nothing: arrears on every year
BUILDING_RATES = ((1_050_000, 2), (1_350_000, 4), (1_650_000, 3), (2_000_000, 2), (2_600_000, 1))
# BPHTB acquisition types (jenis perolehan) 1..14 and their weights: mostly sales (01 jual beli).
ACQUISITION_WEIGHTS = (80, 2, 6, 2, 6, 1, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5)


@dataclass(frozen=True)
class _Object:
    nop: str
    kecamatan: str
    kelurahan: str
    district: int              # index into regions.KECAMATAN
    address: str
    owner: str
    land_area: int
    building_area: int
    land_rate: int
    building_rate: int
    due_month: int              # 8 (31 August) for most, 9 (30 September) for some
    non_payer: bool


def jakarta_today() -> datetime.date:
    return datetime.datetime.now(TIMEZONE).date()


def pbb_amount(njop: int) -> int:
    """PBB-P2 due for an NJOP: 0.1% (0.2% above Rp1 billion) of NJOP above NJOPTKP, at least the minimum."""
    taxable = max(njop - NJOPTKP, 0)
    per_mille = 1 if njop <= 1_000_000_000 else 2
    return max((taxable * per_mille + 500) // 1000, PBB_MINIMUM)


def bphtb_amount(acquisition_value: int) -> int:
    return max((acquisition_value - NPOPTKP) * BPHTB_RATE_PERCENT // 100, BPHTB_MINIMUM)


def _person(rng: random.Random) -> tuple[str, bool]:
    female = rng.random() < 0.5
    first = rng.choice(regions.FEMALE_NAMES if female else regions.MALE_NAMES)
    r = rng.random()
    if r < 0.15:
        name = first
    elif r < 0.85:
        name = f"{first} {rng.choice(regions.FAMILY_NAMES)}"
    else:
        second = rng.choice(regions.FEMALE_NAMES if female else regions.MALE_NAMES)
        name = f"{first} {second} {rng.choice(regions.FAMILY_NAMES)}"
    if rng.random() < 0.06:
        name = ("HJ. " if female else "H. ") + name
    return name, female


def _owner(rng: random.Random) -> str:
    if rng.random() < 0.03:
        words = rng.sample(regions.COMPANY_WORDS, rng.choice((2, 3)))
        return ("PT " if rng.random() < 0.7 else "CV ") + " ".join(words)
    return _person(rng)[0]


def _address(rng: random.Random) -> str:
    number = rng.randint(1, 250)
    if rng.random() < 0.35:
        return f"JL. {rng.choice(regions.MAIN_STREETS)} NO. {number}"
    street = rng.choice(regions.ESTATE_STREETS)
    if rng.random() < 0.5:
        return f"JL. {street} {rng.choice(('', 'I', 'II', 'III', 'IV', 'V')) or 'RAYA'} BLOK " \
               f"{rng.choice('ABCDEFGH')}{rng.randint(1, 24)} NO. {number}"
    return f"JL. {street} NO. {number} RT {rng.randint(1, 12):03d}/RW {rng.randint(1, 25):03d}"


def _split(rng: random.Random, total: int, parts: int) -> list[int]:
    """``total`` objects over ``parts`` kelurahan with uneven weights (largest remainder), first >= 1."""
    weights = [rng.uniform(0.4, 1.6) for _ in range(parts)]
    scale = total / sum(weights)
    exact = [w * scale for w in weights]
    counts = [int(x) for x in exact]
    order = sorted(range(parts), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    if counts[0] == 0:
        donor = max(range(parts), key=lambda i: counts[i])
        counts[donor] -= 1
        counts[0] += 1
    return counts


def _villages(rng: random.Random, count: int) -> list[tuple[int, str, int, tuple[int, str], int]]:
    """(district index, kecamatan, land rate, (kelurahan index, kelurahan), objects) in NOP order."""
    villages = [(d, name, rate, kelurahan) for d, (name, rate, kels) in enumerate(regions.KECAMATAN)
                for kelurahan in enumerate(kels)]
    return [(*v, n) for v, n in zip(villages, _split(rng, count, len(villages)))]


def _objects(rng: random.Random, villages: list, region_code: str) -> Iterator[_Object]:
    """The tax objects in NOP order, made one at a time (10 million of them would not fit in memory)."""
    for district, kecamatan, base_rate, (k, kelurahan), n in villages:
        village_factor = rng.uniform(0.8, 1.25)
        block, serial, block_size = 1, 0, rng.randint(40, 160)
        for _ in range(n):
            serial += 1
            if serial > block_size:
                block, serial, block_size = block + 1, 1, rng.randint(40, 160)
            nop = f"{region_code}{(district + 1) * 10:03d}{k + 1:03d}{block:03d}{serial:04d}0"
            land = min(max(int(rng.lognormvariate(math.log(120), 0.55)), 30), 5000)
            building = 0 if rng.random() < 0.08 else max(int(land * rng.uniform(0.45, 1.6)), 21)
            rate = int(base_rate * village_factor * rng.uniform(0.85, 1.15)) // 1000 * 1000
            building_rate = rng.choices([r for r, _ in BUILDING_RATES], [w for _, w in BUILDING_RATES])[0]
            yield _Object(
                nop=nop, kecamatan=kecamatan, kelurahan=kelurahan, district=district,
                address=_address(rng), owner=_owner(rng), land_area=land, building_area=building,
                land_rate=rate, building_rate=building_rate,
                due_month=9 if rng.random() < 0.1 else 8, non_payer=rng.random() < NON_PAYERS)


def _njop(obj: _Object, age: int) -> int:
    """NJOP of the object ``age`` years ago: values grew about 6% a year."""
    current = obj.land_area * obj.land_rate + obj.building_area * obj.building_rate
    return int(current * 0.94 ** age)


def _due(year: int, month: int) -> datetime.date:
    return datetime.date(year, 8, 31) if month == 8 else datetime.date(year, 9, 30)


def _nik(rng: random.Random, region_code: str, district: int, female: bool) -> str:
    day = rng.randint(1, 28) + (40 if female else 0)
    return (f"{region_code}{district + 1:02d}{day:02d}{rng.randint(1, 12):02d}{rng.randint(0, 99):02d}"
            f"{rng.randint(1, 2999):04d}")


async def seed_region(conn: asyncpg.Connection, *, objects: int, region_code: str, seed: int, err: TextIO,
                      today: datetime.date | None = None) -> str:
    """Write the synthetic region; returns a short summary with examples a person can type."""
    if objects < 1:
        raise ValueError("objects must be at least 1")
    today = today or jakarta_today()
    started = time.monotonic()
    rng = random.Random(seed)
    # BPHTB draws from its own stream, so the PBB data does not depend on when registrations are made.
    rng_bphtb = random.Random(seed * 7919 + 1)
    villages = _villages(rng, objects)
    years = list(range(today.year - YEARS + 1, today.year + 1))
    pbb_status: Counter[str] = Counter()
    chosen: list[_Object] = []          # objects that get a BPHTB registration (about 5%)
    firsts: list[_Object] = []         # the first object (lowest NOP), once made

    def pbb_records():
        line = 0
        for index, obj in enumerate(_objects(rng, villages, region_code)):
            if index == 0:
                firsts.append(obj)
            if rng_bphtb.random() < BPHTB_SHARE or (index == objects - 1 and not chosen):
                chosen.append(obj)
            for year in years:
                age = today.year - year
                if index == 0 and age <= 1:
                    status = "unpaid"       # the README's example: payable, with one year of arrears
                elif rng.random() < CANCELLED:
                    status = "cancelled"
                elif not obj.non_payer and rng.random() < PAID_BY_AGE[age]:
                    status = "paid"
                else:
                    status = "unpaid"
                pbb_status[status] += 1
                line += 1
                yield (line, f"{obj.nop}{year:04d}", obj.nop, year, obj.owner, obj.address, obj.kelurahan,
                       obj.kecamatan, obj.land_area, obj.building_area, pbb_amount(_njop(obj, age)), 0,
                       _due(year, obj.due_month), None, None, None, None, None, status)

    err.write(f"demo seed: {objects} tax objects, PBB-P2 {years[0]}-{years[-1]}\n")
    err.flush()
    async with bulk_transaction(conn):
        pbb = await load_rows(conn, "PBB", pbb_records())
        bphtb = _bphtb_records(rng_bphtb, chosen, region_code, today)
        registrations = await load_rows(conn, "BPHTB", bphtb)
    seconds = time.monotonic() - started
    err.write(f"demo seed: done in {seconds:.1f} s\n")
    err.flush()

    first = firsts[0]
    example = next(r for r in bphtb if r[18] == "unpaid" and r[13] >= today)
    bphtb_status = Counter(r[18] for r in bphtb)
    expired = sum(1 for r in bphtb if r[13] < today)
    kept = len(pbb.conflicts) + len(registrations.conflicts)
    lines = [
        f"Demo region {region_code} (KOTA BEKASI), seed {seed}:",
        f"  {objects} tax objects in {len({v[1] for v in villages if v[4]})} kecamatan, "
        f"{sum(1 for v in villages if v[4])} kelurahan",
        f"  PBB-P2 {years[0]}-{years[-1]}: {sum(pbb_status.values())} bills ({_counts(pbb_status)}); "
        f"new {pbb.loaded}, updated {pbb.updated}",
        f"  BPHTB: {len(bphtb)} registrations ({_counts(bphtb_status)}; {expired} past valid_until); "
        f"new {registrations.loaded}, updated {registrations.updated}",
    ]
    if kept:
        lines.append(f"  {kept} bill{'' if kept == 1 else 's'} with an active gateway payment kept "
                     "status and amount")
    lines += [
        "Try:",
        f"  gateway inquiry pbb {display_nop(first.nop)} {today.year}     "
        f"(unpaid, due {_due(today.year, first.due_month)}; {today.year - 1} unpaid too)",
        f"  gateway inquiry bphtb {example[1]}     (unpaid, valid until {example[13]})",
    ]
    return "\n".join(lines)


def _counts(counter: Counter) -> str:
    return ", ".join(f"{counter[s]} {s}" for s in ("unpaid", "paid", "cancelled"))


def _bphtb_records(rng: random.Random, chosen: list[_Object], region_code: str,
                   today: datetime.date) -> list[tuple]:
    """Registrations of the last six months for the chosen objects, in registration-number order; the
    first is unpaid and valid, for the summary's example."""
    months = []
    year, month = today.year, today.month
    for _ in range(6):
        months.append((year, month))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    months.reverse()
    serials: Counter[tuple[int, int]] = Counter()
    drafts = []
    for obj in chosen:
        year, month = rng.choice(months)
        serials[(year, month)] += 1
        last_day = today.day if (year, month) == (today.year, today.month) else 28
        registered = datetime.date(year, month, rng.randint(1, last_day))
        drafts.append((make_registration(year, month, serials[(year, month)]), registered, obj))
    drafts.sort(key=lambda d: d[0])
    records = []
    for line, (number, registered, obj) in enumerate(drafts, start=1):
        buyer, female = _person(rng)
        acquisition_type = rng.choices(range(1, 15), ACQUISITION_WEIGHTS)[0]
        value = max(_njop(obj, 0) * rng.randint(100, 160) // 100 // 1_000_000 * 1_000_000, NPOPTKP + 10_000_000)
        amount = bphtb_amount(value)
        penalty = 0 if rng.random() < 0.85 else amount * 2 * rng.randint(1, 6) // 100
        if rng.random() < 0.85:
            valid_until = today + datetime.timedelta(days=rng.randint(3, 60))
        else:
            valid_until = max(registered + datetime.timedelta(days=14),
                              today - datetime.timedelta(days=rng.randint(1, 60)))
            if valid_until >= today:
                valid_until = today - datetime.timedelta(days=1)
        r = rng.random()
        status = "unpaid" if r < 0.75 else "paid" if r < 0.95 else "cancelled"
        if line == 1:
            status, penalty = "unpaid", 0
            valid_until = max(valid_until, today + datetime.timedelta(days=30))
        records.append((line, number, obj.nop, registered.year, buyer, obj.address, obj.kelurahan,
                        obj.kecamatan, obj.land_area, obj.building_area, amount, penalty, None, valid_until,
                        _nik(rng, region_code, obj.district, female), acquisition_type, value,
                        rng.choice(regions.PPAT_NAMES), status))
    return records
