"""deploy/'s service files say what the gateway does: the example configuration loads, the systemd unit
waits for the notifications gateway/systemd.py sends, and runs commands that exist."""
from __future__ import annotations

import configparser
import shlex
from pathlib import Path

from gateway.cli.parser import build_parser
from gateway.config import load_config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read(DEPLOY / "systemd" / name)
    return parser


def test_the_host_configuration_loads_with_its_secrets_from_the_environment():
    config = load_config(DEPLOY / "systemd" / "gateway.toml",
                         env={"GATEWAY_DATABASE_URL": "postgresql://gateway_app@db/gateway"})
    assert config.state_dir == Path("/var/lib/gateway")
    assert config.iso8583.listen == "0.0.0.0:8583" and config.http.listen == "0.0.0.0:8080"
    assert config.banks[0].api_secret == "env:BANK_110_SECRET"


def test_the_units_run_existing_commands_and_wait_for_the_gateways_notifications():
    service = unit("gateway.service")["Service"]
    assert (service["Type"], service["NotifyAccess"]) == ("notify", "main")
    assert int(service["WatchdogSec"]) >= 30  # above a database failover: the gateway answers 91 meanwhile
    assert service["Restart"] == "on-failure" and service["NoNewPrivileges"] == "yes"
    migrate = unit("gateway-migrate.service")["Service"]
    assert migrate["Type"] == "oneshot"
    parser = build_parser()
    for command in (service["ExecStart"], migrate["ExecStart"]):
        argv = shlex.split(command)
        assert argv[0] == "/opt/gateway/bin/gateway"
        parser.parse_args(argv[1:])  # exits (SystemExit) on a command or option that does not exist
