"""deploy/'s container set-up holds together (no Docker daemon needed): the image builds in two stages and
runs as a user without compilers, the compose file wires PostgreSQL, the one-shot migration and key set-up,
two instances and HAProxy with the variables deploy/haproxy/haproxy.cfg reads, and the instances trust exactly
HAProxy's address for the PROXY header."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from gateway.config import load_config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_the_image_is_built_in_two_stages_and_runs_unprivileged_with_a_health_check():
    text = (DEPLOY / "Dockerfile").read_text()
    stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    assert len(stages) == 2
    build, final = stages
    assert "build-essential" in build and "build-essential" not in final and "gcc" not in final
    assert re.search(r"^USER gateway$", final, re.M)
    assert "HEALTHCHECK" in final and "/healthz" in final
    assert "--no-index --find-links=/wheels gateway" in final


def test_compose_wires_the_database_two_instances_and_the_balancer():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"db", "migrate", "keys", "gw1", "gw2", "haproxy"} <= set(services)
    assert services["db"]["image"] == "postgres:15" and "healthcheck" in services["db"]
    assert services["migrate"]["command"] == ["db", "migrate"]
    haproxy_address = services["haproxy"]["networks"]["gateway"]["ipv4_address"]
    for name in ("gw1", "gw2"):
        gw = services[name]
        assert gw["command"] == ["serve"]
        assert gw["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        env = gw["environment"]
        assert env["GATEWAY_ISO8583_PROXY_PROTOCOL_FROM"] == env["GATEWAY_HTTP_PROXY_PROTOCOL_FROM"] \
            == f"{haproxy_address}/32"
        assert "keys:/var/lib/gateway/keys" in gw["volumes"]  # one signing key for both
    # Every variable the balancer's configuration reads is set by compose, and nothing else.
    config_lines = [line for line in (DEPLOY / "haproxy" / "haproxy.cfg").read_text().splitlines()
                    if not line.lstrip().startswith("#")]
    wanted = set(re.findall(r"\$\{([A-Z0-9_]+)\}", "\n".join(config_lines)))
    assert set(services["haproxy"]["environment"]) == wanted
    # The mounted configuration loads with the environment compose gives it.
    env = {k: v for k, v in services["gw1"]["environment"].items() if k.startswith("GATEWAY_")}
    env["GATEWAY_DATABASE_URL"] = "postgresql://gateway:x@db:5432/gateway"
    config = load_config(DEPLOY / "compose" / "gateway.toml", env=env)
    assert config.iso8583.proxy_protocol_from == (f"{haproxy_address}/32",)
    assert config.banks[0].api_secret == "env:BANK_110_SECRET"
