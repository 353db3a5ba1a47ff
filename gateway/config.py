"""Typed settings from TOML plus ``GATEWAY_<SECTION>_<KEY>`` environment overrides (spec/operations.md).

Every key has a default, unknown keys and bad values are errors: a typo in a payment gateway's
configuration must stop it at start, not silently fall back to a default.
"""
from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.domain.penalty import DEFAULT_PBB_POLICY, PenaltyPeriod, PenaltyPolicy
from gateway.domain.relief import ReliefProgram, check_programs


class ConfigError(Exception):
    """A configuration problem; the CLI prints it on one line and exits 2."""


@dataclass(frozen=True)
class DatabaseConfig:
    url: str = ""
    # The owner role `db migrate` uses (DDL); empty: the same URL. The runtime role has no DDL, no TRUNCATE
    # and no DELETE of history (spec/operations.md).
    migrate_url: str = ""
    pool_min: int = 2
    pool_max: int = 20
    # Bound every wait: with the defaults a request is answered (RC 91 when the database is away) within
    # 2 s (spec/domain.md invariant 3): acquire 0.5 s + statement 1 s + a margin, connect 1 s within them.
    statement_timeout_ms: int = 1000
    lock_timeout_ms: int = 500
    connect_timeout_ms: int = 1000
    acquire_timeout_ms: int = 500
    # A transaction whose client vanished (a partition whose reset was lost) is ended by the server.
    idle_in_transaction_timeout_ms: int = 2000
    # TCP keepalives and user timeout on the database socket, both ends: a dead peer is noticed in seconds.
    keepalive_idle_s: int = 5
    keepalive_interval_s: int = 2
    keepalive_count: int = 3
    # Requests of one process waiting for the same bill hold no pool connection while they wait; at most
    # this many may wait (more: RC 91 at once).
    max_waiters_per_bill: int = 64
    # Long staff work (closing a date, reports) gets its own statement timeout.
    close_statement_timeout_ms: int = 300_000
    # Staff and treasury work (search, reports, imports) may wait longer for a connection than a bank.
    staff_acquire_timeout_ms: int = 3000
    # Message-log partitions ahead and retention purges, every this often.
    housekeeping_interval_s: int = 600
    housekeeping_acquire_timeout_ms: int = 5000


@dataclass(frozen=True)
class MessageLogConfig:
    # Rows wait in memory at most this many; beyond, new rows are dropped from the database log (counted;
    # each is still in the process log).
    max_queue: int = 100_000
    batch_rows: int = 2000
    flush_interval_ms: int = 50
    acquire_timeout_ms: int = 2000
    write_timeout_ms: int = 10_000


@dataclass(frozen=True)
class StateConfig:
    dir: str = "./var"


@dataclass(frozen=True)
class RegionConfig:
    code: str = "3275"
    name: str = "KOTA BEKASI"
    timezone: str = "Asia/Jakarta"
    cutoff: str = "23:00"
    quote_ttl_minutes: int = 15

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def cutoff_time(self) -> time:
        hours, minutes = self.cutoff.split(":")
        return time(int(hours), int(minutes))


@dataclass(frozen=True)
class Iso8583Config:
    listen: str = "127.0.0.1:8583"
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    max_in_flight: int = 64
    max_connections: int = 256
    max_connections_per_address: int = 16
    first_frame_timeout_s: int = 30
    idle_timeout_s: int = 300
    echo_after_s: int = 60
    max_message_bytes: int = 8192
    drain_timeout_s: int = 10       # at shutdown: requests in flight may finish this long
    # Each instance publishes its open connections for the console's dashboard this often (a snapshot older
    # than three intervals is shown as stale).
    snapshot_interval_s: int = 5
    # Balancers (addresses or networks) whose connections start with a PROXY protocol v2 header naming the
    # bank's real address (HAProxy `send-proxy-v2`); empty: none, every peer is the client itself.
    proxy_protocol_from: tuple[str, ...] = ()


@dataclass(frozen=True)
class HttpConfig:
    listen: str = "127.0.0.1:8080"
    public_url: str = "http://127.0.0.1:8080"
    head_timeout_s: int = 10        # a request head not complete by then: connection closed
    idle_timeout_s: int = 75        # keep-alive connection idle between requests
    max_head_bytes: int = 8192      # larger heads: 431, nothing of them echoed or logged
    max_body_bytes: int = 1_048_576       # larger bodies: 413
    max_upload_bytes: int = 67_108_864    # a bank's reconciliation file uploaded by treasury
    proof_checks_per_minute: int = 60     # public proof checks per client address
    drain_timeout_s: int = 10       # at shutdown: requests in flight may finish this long
    proxy_protocol_from: tuple[str, ...] = ()  # as [iso8583] proxy_protocol_from


@dataclass(frozen=True)
class StaffConfig:
    signin_failures_per_user: int = 5
    signin_failures_per_address: int = 20
    signin_window_minutes: int = 15
    session_idle_minutes: int = 30


@dataclass(frozen=True)
class ServerConfig:
    # Worker processes of `gateway serve` sharing its ports (SO_REUSEPORT); 0: one per core.
    workers: int = 0


@dataclass(frozen=True)
class ProofConfig:
    key_dir: str = "./var/keys"


@dataclass(frozen=True)
class BankConfig:
    code: str
    name: str = ""
    taxes: tuple[str, ...] = ("pbb", "bphtb")
    allow: tuple[str, ...] = ("127.0.0.1/32",)
    framing: str = "ascii4"
    iso_listen: str = ""
    require_sign_on: bool = False
    mac_key: str = ""
    api_secret: str = ""
    client_cert_fingerprint: str = ""
    enabled: bool = True

    def allows_tax(self, tax: str) -> bool:
        return tax.lower() in self.taxes

    def allows_address(self, address: str) -> bool:
        return address_in(address, self.allow)

    def secret(self) -> str:
        """The API secret, resolving ``env:NAME`` at use time so rotation needs no restart."""
        if self.api_secret.startswith("env:"):
            return os.environ.get(self.api_secret[4:], "")
        return self.api_secret


@dataclass(frozen=True)
class TestingConfig:
    enabled: bool = False
    clock_offset_seconds: int = 0


@dataclass(frozen=True)
class Config:
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    state: StateConfig = field(default_factory=StateConfig)
    region: RegionConfig = field(default_factory=RegionConfig)
    penalty_pbb: PenaltyPolicy = DEFAULT_PBB_POLICY
    iso8583: Iso8583Config = field(default_factory=Iso8583Config)
    http: HttpConfig = field(default_factory=HttpConfig)
    message_log: MessageLogConfig = field(default_factory=MessageLogConfig)
    staff: StaffConfig = field(default_factory=StaffConfig)
    proof: ProofConfig = field(default_factory=ProofConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    banks: tuple[BankConfig, ...] = ()
    relief: tuple[ReliefProgram, ...] = ()
    testing: TestingConfig = field(default_factory=TestingConfig)
    source: str = "built-in defaults"

    @property
    def clock_offset_seconds(self) -> int:
        # The offset is honoured only when testing is explicitly enabled (operations.md).
        return self.testing.clock_offset_seconds if self.testing.enabled else 0

    @property
    def state_dir(self) -> Path:
        return Path(self.state.dir)

    def bank(self, code: str) -> BankConfig | None:
        for bank in self.banks:
            if bank.code == code:
                return bank
        return None


_SECTIONS = {
    "database": DatabaseConfig,
    "state": StateConfig,
    "region": RegionConfig,
    "iso8583": Iso8583Config,
    "http": HttpConfig,
    "message_log": MessageLogConfig,
    "staff": StaffConfig,
    "proof": ProofConfig,
    "server": ServerConfig,
    "testing": TestingConfig,
}


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Load the configuration: ``path``, else ``$GATEWAY_CONFIG``, else ``./gateway.toml`` if present."""
    env = os.environ if env is None else env
    explicit = path is not None or bool(env.get("GATEWAY_CONFIG"))
    chosen = Path(path) if path is not None else Path(env.get("GATEWAY_CONFIG") or "gateway.toml")
    raw: dict[str, Any] = {}
    source = "built-in defaults"
    if chosen.exists():
        try:
            raw = tomllib.loads(chosen.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{chosen}: does not parse: {exc}") from None
        source = str(chosen)
    elif explicit:
        raise ConfigError(f"{chosen}: configuration file not found")
    return build_config(raw, env, source)


def build_config(raw: Mapping[str, Any], env: Mapping[str, str], source: str = "") -> Config:
    known = set(_SECTIONS) | {"penalty", "banks", "relief"}
    for key in raw:
        if key not in known:
            raise ConfigError(f"{source}: unknown section [{key}]")
    sections: dict[str, Any] = {}
    for name, cls in _SECTIONS.items():
        values = dict(raw.get(name, {}))
        if not isinstance(raw.get(name, {}), dict):
            raise ConfigError(f"{source}: [{name}] must be a table")
        for f in fields(cls):
            env_name = f"GATEWAY_{name.upper()}_{f.name.upper()}"
            if env_name in env:
                values[f.name] = env[env_name]
        sections[name] = _make(cls, values, f"[{name}]", source)
    if "GATEWAY_DATABASE_URL" in env:
        sections["database"] = replace(sections["database"], url=env["GATEWAY_DATABASE_URL"])
    config = Config(
        **sections,
        penalty_pbb=_penalty(raw.get("penalty", {}), source),
        banks=tuple(_make(BankConfig, b, f"[[banks]] #{i + 1}", source) for i, b in enumerate(raw.get("banks", []))),
        relief=_relief(raw.get("relief", []), source),
        source=source,
    )
    _validate(config, source)
    return config


def _make(cls: type, values: Mapping[str, Any], where: str, source: str) -> Any:
    by_name = {f.name: f for f in fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in by_name:
            raise ConfigError(f"{source}: {where}: unknown key '{key}'")
        kwargs[key] = _coerce(value, by_name[key].type, f"{where} {key}", source)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{source}: {where}: {exc}") from None


def _coerce(value: Any, type_name: Any, where: str, source: str) -> Any:
    type_name = str(type_name)
    try:
        if type_name == "int":
            if isinstance(value, bool):
                raise ValueError("not an integer")
            return int(value)
        if type_name == "bool":
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("1", "true", "yes", "on"):
                return True
            if str(value).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError("not a boolean")
        if type_name.startswith("tuple"):
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError("not a list of strings")
            return tuple(value)
        if not isinstance(value, str):
            raise ValueError("not a string")
        return value
    except ValueError as exc:
        raise ConfigError(f"{source}: {where}: {exc}: {value!r}") from None


def _penalty(raw: Any, source: str) -> PenaltyPolicy:
    if not raw:
        return DEFAULT_PBB_POLICY
    if not isinstance(raw, dict) or set(raw) - {"pbb"}:
        raise ConfigError(f"{source}: [penalty] holds only [[penalty.pbb]] periods")
    periods = []
    for i, item in enumerate(raw.get("pbb", [])):
        where = f"[[penalty.pbb]] #{i + 1}"
        unknown = set(item) - {"due_from", "due_before", "rate_per_month", "max_months"}
        if unknown:
            raise ConfigError(f"{source}: {where}: unknown key '{sorted(unknown)[0]}'")
        try:
            periods.append(PenaltyPeriod(
                rate_per_month=Decimal(str(item["rate_per_month"])),
                max_months=int(item["max_months"]),
                due_from=_date(item.get("due_from")),
                due_before=_date(item.get("due_before")),
            ))
        except (KeyError, ValueError, InvalidOperation, TypeError) as exc:
            raise ConfigError(f"{source}: {where}: {exc}") from None
    try:
        return PenaltyPolicy(tuple(periods))
    except ValueError as exc:
        raise ConfigError(f"{source}: [penalty.pbb]: {exc}") from None


_RELIEF_KEYS = {"id", "name", "decree", "from", "to", "taxes", "tax_years", "kecamatan", "principal_discount",
                "penalty_waiver"}
_RELIEF_REQUIRED = ("id", "name", "decree", "from", "to", "taxes")


def _relief(raw: Any, source: str) -> tuple[ReliefProgram, ...]:
    """``[[relief]]`` programs (spec/domain.md "Relief programs"); an error names the program and the key."""
    if not isinstance(raw, list):
        raise ConfigError(f"{source}: relief: write each program as a [[relief]] table")
    programs = []
    for i, item in enumerate(raw):
        where = f"[[relief]] #{i + 1}" + (f" ({item['id']})" if isinstance(item, dict) and
                                          isinstance(item.get("id"), str) else "")

        def fail(key: str, problem: str) -> ConfigError:
            return ConfigError(f"{source}: {where}: {key}: {problem}")

        if not isinstance(item, dict):
            raise ConfigError(f"{source}: {where}: must be a table")
        if unknown := sorted(set(item) - _RELIEF_KEYS):
            raise ConfigError(f"{source}: {where}: unknown key '{unknown[0]}'")
        for key in _RELIEF_REQUIRED:
            if key not in item:
                raise fail(key, "required")
        for key in ("id", "name", "decree"):
            if not isinstance(item[key], str):
                raise fail(key, "a string required")
        starts, ends = (_relief_date(item[key], lambda problem, key=key: fail(key, problem)) for key in ("from", "to"))
        taxes = item["taxes"]
        if not isinstance(taxes, list) or not all(isinstance(t, str) and t.lower() in ("pbb", "bphtb") for t in taxes):
            raise fail("taxes", "a list of 'pbb' and 'bphtb' required")
        years = item.get("tax_years")
        min_year = max_year = None
        current = False
        if years == "current":
            current = True
        elif isinstance(years, dict) and not set(years) - {"min", "max"} and all(
                isinstance(v, int) and not isinstance(v, bool) for v in years.values()):
            min_year, max_year = years.get("min"), years.get("max")
        elif years is not None:
            raise fail("tax_years", "\"current\" or { min = YEAR, max = YEAR } required")
        kecamatan = item.get("kecamatan", [])
        if not isinstance(kecamatan, list) or not all(isinstance(k, str) for k in kecamatan):
            raise fail("kecamatan", "a list of 3-digit codes (strings) required")
        percents = {key: _percent(item.get(key, "0"), lambda problem, key=key: fail(key, problem))
                    for key in ("principal_discount", "penalty_waiver")}
        try:
            programs.append(ReliefProgram(
                id=item["id"], name=item["name"], decree=item["decree"], starts=starts, ends=ends,
                taxes=frozenset(t.upper() for t in taxes), min_year=min_year, max_year=max_year,
                current_year=current, kecamatan=frozenset(kecamatan), **percents))
        except ValueError as exc:
            raise ConfigError(f"{source}: {where}: {exc}") from None
    try:
        check_programs(tuple(programs))
    except ValueError as exc:
        raise ConfigError(f"{source}: [[relief]]: {exc}") from None
    return tuple(programs)


def _relief_date(value: Any, fail: Any) -> date:
    """A TOML local date (2026-06-30) or the same as a string; a date-time is refused (a window is dates)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise fail(f"a date (YYYY-MM-DD) required, not {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise fail(f"not a date (YYYY-MM-DD): {value!r}") from None


def _percent(value: Any, fail: Any) -> Decimal:
    """A percentage as TOML gives it: a string ("12.5"), an integer or a decimal number."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise fail("a percentage from 0 to 100 required")
    try:
        percent = Decimal(str(value).strip())
    except InvalidOperation:
        raise fail(f"not a number: {value!r}") from None
    if not percent.is_finite() or not Decimal(0) <= percent <= Decimal(100):
        raise fail(f"a percentage from 0 to 100 required, not {value!r}")
    return percent


def _date(value: Any) -> date | None:
    if value is None:
        return None
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def address_in(address: str, networks: tuple[str, ...]) -> bool:
    """Whether a peer address (IPv4, IPv6 or IPv4-mapped IPv6) falls in one of the networks."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in ipaddress.ip_network(net, strict=False) for net in networks)


_HOSTPORT = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.\-]+):(\d{1,5})$")


def parse_listen(text: str) -> tuple[str, int]:
    match = _HOSTPORT.match(text)
    if not match or not 0 <= int(match.group(2)) <= 65535:
        raise ValueError(f"not HOST:PORT: {text!r}")
    return match.group(1).strip("[]"), int(match.group(2))


def _validate(config: Config, source: str) -> None:
    def fail(message: str) -> None:
        raise ConfigError(f"{source}: {message}")

    region = config.region
    if not re.fullmatch(r"\d{4}", region.code):
        fail(f"[region] code must be 4 digits: {region.code!r}")
    try:
        ZoneInfo(region.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        fail(f"[region] timezone unknown: {region.timezone!r}")
    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", region.cutoff):
        fail(f"[region] cutoff must be HH:MM: {region.cutoff!r}")
    if not 1 <= region.quote_ttl_minutes <= 24 * 60:
        fail("[region] quote_ttl_minutes must be 1..1440")
    db = config.database
    if not 1 <= db.pool_min <= db.pool_max <= 500:
        fail("[database] needs 1 <= pool_min <= pool_max <= 500")
    for name in ("statement_timeout_ms", "lock_timeout_ms", "connect_timeout_ms", "acquire_timeout_ms",
                 "idle_in_transaction_timeout_ms", "staff_acquire_timeout_ms", "housekeeping_acquire_timeout_ms"):
        if getattr(db, name) < 100:
            fail(f"[database] {name} must be at least 100 ms")
    if db.close_statement_timeout_ms < db.statement_timeout_ms:
        fail("[database] close_statement_timeout_ms must be at least statement_timeout_ms")
    for name in ("keepalive_idle_s", "keepalive_interval_s", "keepalive_count", "max_waiters_per_bill",
                 "housekeeping_interval_s"):
        if getattr(db, name) < 1:
            fail(f"[database] {name} must be at least 1")
    iso = config.iso8583
    for name in ("max_in_flight", "max_connections", "max_connections_per_address", "first_frame_timeout_s",
                 "idle_timeout_s", "echo_after_s", "drain_timeout_s"):
        if getattr(iso, name) < 1:
            fail(f"[iso8583] {name} must be at least 1")
    if not 1 <= iso.snapshot_interval_s <= 3600:
        fail("[iso8583] snapshot_interval_s must be 1..3600")
    for name in ("head_timeout_s", "idle_timeout_s", "proof_checks_per_minute", "drain_timeout_s"):
        if getattr(config.http, name) < 1:
            fail(f"[http] {name} must be at least 1")
    if not 1024 <= config.http.max_head_bytes <= 65536:
        fail("[http] max_head_bytes must be 1024..65536")
    if not 1024 <= config.http.max_body_bytes <= config.http.max_upload_bytes:
        fail("[http] needs 1024 <= max_body_bytes <= max_upload_bytes")
    if not 0 <= config.server.workers <= 64:
        fail("[server] workers must be 0..64 (0: one per core)")
    for name in ("max_queue", "batch_rows", "flush_interval_ms", "acquire_timeout_ms", "write_timeout_ms"):
        if getattr(config.message_log, name) < 1:
            fail(f"[message_log] {name} must be at least 1")
    staff = config.staff
    for name in ("signin_failures_per_user", "signin_failures_per_address", "signin_window_minutes",
                 "session_idle_minutes"):
        if getattr(staff, name) < 1:
            fail(f"[staff] {name} must be at least 1")
    for where, text in (("[iso8583] listen", config.iso8583.listen), ("[http] listen", config.http.listen)):
        try:
            parse_listen(text)
        except ValueError as exc:
            fail(f"{where}: {exc}")
    seen: set[str] = set()
    for bank in config.banks:
        where = f"[[banks]] code {bank.code!r}"
        if not re.fullmatch(r"\d{1,11}", bank.code):
            fail(f"{where}: code must be 1-11 digits")
        if bank.code in seen:
            fail(f"{where}: duplicate bank code")
        seen.add(bank.code)
        if bank.framing not in ("ascii4", "binary2"):
            fail(f"{where}: framing must be ascii4 or binary2")
        if set(bank.taxes) - {"pbb", "bphtb"}:
            fail(f"{where}: taxes must be among pbb, bphtb")
        for net in bank.allow:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                fail(f"{where}: allow entry is not an address or network: {net!r}")
        if bank.mac_key and not re.fullmatch(r"([0-9a-fA-F]{2}){16,64}", bank.mac_key):
            fail(f"{where}: mac_key must be 16-64 bytes of hex")
        if bank.iso_listen:
            try:
                parse_listen(bank.iso_listen)
            except ValueError as exc:
                fail(f"{where}: iso_listen: {exc}")
    for section, nets in (("iso8583", config.iso8583.proxy_protocol_from), ("http", config.http.proxy_protocol_from)):
        for net in nets:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                fail(f"[{section}] proxy_protocol_from: not an address or network: {net!r}")
    if (config.iso8583.proxy_protocol_from or config.http.proxy_protocol_from) and config.iso8583.tls_cert:
        # The header comes before any TLS handshake, which a listener does before reading a byte (HTTP uses
        # the ISO 8583 listener's certificate).
        fail("proxy_protocol_from and [iso8583] tls_cert together: terminate TLS on the balancer, or connect "
             "the banks directly")
    _check_shared_listener(config, fail)


def _check_shared_listener(config: Config, fail) -> None:
    """On the shared ISO 8583 listener a source address must name exactly one bank (spec/iso8583.md)."""
    shared = [b for b in config.banks if not b.iso_listen]
    for i, a in enumerate(shared):
        for b in shared[i + 1:]:
            for net_a in a.allow:
                for net_b in b.allow:
                    x, y = ipaddress.ip_network(net_a, strict=False), ipaddress.ip_network(net_b, strict=False)
                    if x.version == y.version and x.overlaps(y):
                        fail(f"[[banks]] {a.code!r} and {b.code!r}: allow lists overlap on the shared "
                             f"ISO 8583 listener ({net_a} / {net_b})")
