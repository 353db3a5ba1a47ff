"""Configuration loading: defaults, environment overrides, and errors for anything unknown or bad."""
from __future__ import annotations

import os
from datetime import date, time
from decimal import Decimal

import pytest

from gateway.config import ConfigError, build_config, load_config
from gateway.domain.penalty import DEFAULT_PBB_POLICY


def test_defaults_match_operations_md():
    c = build_config({}, env={})
    assert c.database.url == "" and (c.database.pool_min, c.database.pool_max) == (2, 20)
    assert c.state.dir == "./var"
    assert (c.region.code, c.region.name, c.region.timezone, c.region.cutoff) == \
        ("3275", "KOTA BEKASI", "Asia/Jakarta", "23:00")
    assert c.region.cutoff_time == time(23, 0) and c.region.quote_ttl_minutes == 15
    assert c.iso8583.listen == "127.0.0.1:8583" and c.http.listen == "127.0.0.1:8080"
    assert c.http.public_url == "http://127.0.0.1:8080" and c.proof.key_dir == "./var/keys"
    assert c.penalty_pbb == DEFAULT_PBB_POLICY
    assert c.banks == () and not c.testing.enabled and c.clock_offset_seconds == 0


def test_environment_overrides_file():
    raw = {"region": {"cutoff": "22:00"}, "database": {"pool_max": 10}}
    env = {"GATEWAY_REGION_CUTOFF": "21:30", "GATEWAY_DATABASE_POOL_MAX": "30",
           "GATEWAY_DATABASE_URL": "postgresql://x@/y", "GATEWAY_TESTING_ENABLED": "true",
           "GATEWAY_TESTING_CLOCK_OFFSET_SECONDS": "-86400"}
    c = build_config(raw, env=env)
    assert c.region.cutoff == "21:30" and c.database.pool_max == 30 and c.database.url == "postgresql://x@/y"
    assert c.clock_offset_seconds == -86400


def test_clock_offset_ignored_unless_testing_enabled():
    assert build_config({"testing": {"clock_offset_seconds": 3600}}, env={}).clock_offset_seconds == 0


def test_banks_and_penalty_periods():
    raw = {
        "banks": [{"code": "110", "name": "BPD", "taxes": ["pbb"], "allow": ["10.0.0.0/8"],
                   "api_secret": "env:BANK_110_SECRET", "mac_key": "00" * 16}],
        "penalty": {"pbb": [{"due_before": "2024-01-01", "rate_per_month": "0.02", "max_months": 24},
                            {"due_from": "2024-01-01", "rate_per_month": "0.01", "max_months": 12}]},
    }
    c = build_config(raw, env={})
    bank = c.bank("110")
    assert bank.taxes == ("pbb",) and bank.allows_tax("PBB") and not bank.allows_tax("bphtb")
    assert c.penalty_pbb.period_for(date(2025, 1, 1)).max_months == 12
    assert c.penalty_pbb.period_for(date(2023, 1, 1)).rate_per_month == Decimal("0.02")


def test_overlapping_allow_lists_are_fine_with_own_listeners():
    c = build_config({"banks": [{"code": "110"}, {"code": "111", "iso_listen": "127.0.0.1:9111"}]}, env={})
    assert [b.code for b in c.banks] == ["110", "111"]


def test_bank_secret_from_environment(monkeypatch):
    c = build_config({"banks": [{"code": "110", "api_secret": "env:BANK_110_SECRET"}]}, env={})
    monkeypatch.setenv("BANK_110_SECRET", "s3cret")
    assert c.bank("110").secret() == "s3cret"


@pytest.mark.parametrize("raw, fragment", [
    ({"regoin": {}}, "unknown section [regoin]"),
    ({"region": {"cutof": "23:00"}}, "unknown key 'cutof'"),
    ({"region": {"cutoff": "25:00"}}, "cutoff must be HH:MM"),
    ({"region": {"code": "32"}}, "code must be 4 digits"),
    ({"region": {"timezone": "Mars/Base"}}, "timezone unknown"),
    ({"database": {"pool_min": 5, "pool_max": 2}}, "pool_min <= pool_max"),
    ({"database": {"pool_max": "many"}}, "pool_max"),
    ({"iso8583": {"listen": "nowhere"}}, "listen"),
    ({"banks": [{"code": "110"}, {"code": "110"}]}, "duplicate bank code"),
    ({"banks": [{"code": "110", "allow": ["10.0.0.0/24"]}, {"code": "111", "allow": ["10.0.0.7/32"]}]},
     "allow lists overlap"),
    ({"banks": [{"code": "110", "framing": "ascii2"}]}, "framing"),
    ({"banks": [{"code": "110", "allow": ["not-a-net"]}]}, "allow entry"),
    ({"banks": [{"code": "110", "taxes": ["pkb"]}]}, "taxes"),
    ({"banks": [{"code": "110", "colour": "red"}]}, "unknown key 'colour'"),
    ({"penalty": {"pbb": [{"due_from": "2024-01-01", "rate_per_month": "0.01", "max_months": 24}]}}, "penalty"),
])
def test_bad_configuration_is_an_error(raw, fragment):
    with pytest.raises(ConfigError) as err:
        build_config(raw, env={}, source="gw.toml")
    assert fragment in str(err.value) and str(err.value).startswith("gw.toml")


def test_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_config(env={}).source == "built-in defaults"  # no ./gateway.toml: defaults
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml", env={})
    with pytest.raises(ConfigError, match="not found"):
        load_config(env={"GATEWAY_CONFIG": str(tmp_path / "missing.toml")})
    (tmp_path / "bad.toml").write_text("[region\ncode=1")
    with pytest.raises(ConfigError, match="does not parse"):
        load_config(tmp_path / "bad.toml", env={})
    (tmp_path / "gateway.toml").write_text('[region]\nname = "KOTA X"\n')
    assert load_config(env={}).region.name == "KOTA X"


def test_example_file_loads():
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "gateway.example.toml"
    c = load_config(example, env={})
    assert c.bank("110") is not None and c.region.code == "3275"


def test_server_workers_default_to_one_per_core_and_are_bounded(monkeypatch):
    from gateway.config import ConfigError, build_config
    from gateway.supervisor import WORKER_ENV, worker_count, worker_slot

    config = build_config({}, {})
    assert config.server.workers == 0
    assert worker_count(config) == (os.cpu_count() or 1)
    assert worker_count(build_config({"server": {"workers": 3}}, {})) == 3
    assert build_config({}, {"GATEWAY_SERVER_WORKERS": "1"}).server.workers == 1
    with pytest.raises(ConfigError, match=r"\[server\] workers must be 0..64"):
        build_config({"server": {"workers": 65}}, {})
    for raw, slot in (("0/2", (0, 2)), ("1/2", (1, 2)), ("2/2", None), ("", None), ("x/2", None), ("1", None)):
        monkeypatch.setenv(WORKER_ENV, raw)
        assert worker_slot() == slot, raw


def test_balancers_sending_the_proxy_protocol_are_networks_and_exclude_the_listeners_own_tls():
    config = build_config({"iso8583": {"proxy_protocol_from": ["10.0.0.5/32", "2001:db8::/64"]}},
                          env={"GATEWAY_HTTP_PROXY_PROTOCOL_FROM": "10.0.0.5, 10.0.0.6"})
    assert config.iso8583.proxy_protocol_from == ("10.0.0.5/32", "2001:db8::/64")
    assert config.http.proxy_protocol_from == ("10.0.0.5", "10.0.0.6")
    assert build_config({}, env={}).iso8583.proxy_protocol_from == ()
    with pytest.raises(ConfigError, match=r"\[http\] proxy_protocol_from: not an address or network: 'lb-1'"):
        build_config({"http": {"proxy_protocol_from": ["lb-1"]}}, env={})
    with pytest.raises(ConfigError, match="terminate TLS on the balancer"):
        build_config({"iso8583": {"proxy_protocol_from": ["10.0.0.5"], "tls_cert": "/etc/gw/cert.pem"}}, env={})


# -- [[relief]] programs (spec/domain.md "Relief programs", operations.md) ------------------------------------

_PROGRAM = {"id": "DISC2026-06", "name": "Diskon PBB-P2 2026", "decree": "Kep. Wali Kota Bekasi No. 1",
            "from": date(2026, 5, 1), "to": "2026-06-30", "taxes": ["pbb"], "tax_years": "current",
            "kecamatan": [], "principal_discount": "15", "penalty_waiver": 0}


def test_relief_programs_are_read_with_every_key():
    amnesty = {**_PROGRAM, "id": "AMN", "taxes": ["pbb", "BPHTB"], "tax_years": {"max": 2020},
               "kecamatan": ["010", "020"], "principal_discount": 12.5, "penalty_waiver": "100"}
    first, second = build_config({"relief": [_PROGRAM, amnesty]}, env={}).relief
    assert (first.id, first.starts, first.ends, first.taxes, first.current_year) == \
        ("DISC2026-06", date(2026, 5, 1), date(2026, 6, 30), frozenset({"PBB"}), True)
    assert (first.principal_discount, first.penalty_waiver) == (Decimal("15"), Decimal("0"))
    assert (second.taxes, second.min_year, second.max_year, second.kecamatan) == \
        (frozenset({"PBB", "BPHTB"}), None, 2020, frozenset({"010", "020"}))
    assert (second.principal_discount, second.penalty_waiver) == (Decimal("12.5"), Decimal("100"))
    assert build_config({}, env={}).relief == ()  # none by default


@pytest.mark.parametrize(("change", "message"), [
    ({"from": None}, "[[relief]] #1 (DISC2026-06): from: required"),
    ({"to": "30-06-2026"}, "[[relief]] #1 (DISC2026-06): to: not a date (YYYY-MM-DD): '30-06-2026'"),
    ({"to": "2026-04-30"}, "[[relief]] #1 (DISC2026-06): from: 2026-05-01 is after to 2026-04-30"),
    ({"taxes": ["pbb", "pajak hotel"]}, "[[relief]] #1 (DISC2026-06): taxes: a list of 'pbb' and 'bphtb' required"),
    ({"taxes": []}, "[[relief]] #1 (DISC2026-06): taxes: a non-empty list"),
    ({"tax_years": "all"}, "[[relief]] #1 (DISC2026-06): tax_years: \"current\" or { min = YEAR, max = YEAR }"),
    ({"tax_years": {"min": 2021, "max": 2010}}, "[[relief]] #1 (DISC2026-06): tax_years: min 2021 is above max"),
    ({"kecamatan": ["10"]}, "[[relief]] #1 (DISC2026-06): kecamatan: '10' is not a 3-digit kecamatan code"),
    ({"principal_discount": "101"}, "[[relief]] #1 (DISC2026-06): principal_discount: a percentage from 0 to 100"),
    ({"penalty_waiver": "lima"}, "[[relief]] #1 (DISC2026-06): penalty_waiver: not a number: 'lima'"),
    ({"decree": ""}, "[[relief]] #1 (DISC2026-06): decree: required"),
    ({"id": "no spaces"}, "[[relief]] #1 (no spaces): id: 1-32 letters"),
    ({"discount": "15"}, "[[relief]] #1 (DISC2026-06): unknown key 'discount'"),
])
def test_an_invalid_relief_program_names_the_program_and_the_key(change, message):
    program = {k: v for k, v in {**_PROGRAM, **change}.items() if v is not None}
    with pytest.raises(ConfigError) as error:
        build_config({"relief": [program]}, env={}, source="gw.toml")
    assert str(error.value).startswith(f"gw.toml: {message}"), str(error.value)


def test_relief_program_ids_are_unique():
    with pytest.raises(ConfigError, match=r"\[\[relief\]\]: id: 'DISC2026-06' is used by two programs"):
        build_config({"relief": [_PROGRAM, {**_PROGRAM, "name": "again"}]}, env={})
