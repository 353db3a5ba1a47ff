"""deploy/'s Prometheus alerts and Grafana dashboard speak of metrics the gateway publishes: every metric name
they use is one of gateway/metrics.py's (a renamed metric would otherwise leave an alert silent for ever), and
every label they group or select by is one of that metric's labels."""
from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from gateway import metrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "gateway-dashboard.json"
# Labels Prometheus adds to every series, and the histogram's own.
SCRAPE_LABELS = {"instance", "job", "le"}


def published() -> dict[str, set[str]]:
    """Every sample name the registry can publish, with its labels."""
    names: dict[str, set[str]] = {}
    for metric in metrics.REGISTRY.collect():
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}.get(metric.type, ("",))
        labels = set()
        for sample in metric.samples:
            labels |= set(sample.labels)
        for suffix in suffixes:
            names[metric.name + suffix] = labels
        if not metric.samples:  # a labelled metric not yet used: its declared labels
            names.update({metric.name + s: set() for s in suffixes})
    for collector in metrics.REGISTRY._names_to_collectors.values():
        declared = set(getattr(collector, "_labelnames", ()))
        for name in list(names):
            if name.startswith(collector._name):
                names[name] |= declared
    return names


def expressions() -> list[str]:
    rules = yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"]
    dashboard = json.loads(DASHBOARD.read_text())
    return [r["expr"] for r in rules] + [t["expr"] for p in dashboard["panels"] for t in p["targets"]]


def test_every_alert_names_its_severity_and_says_what_to_do():
    rules = yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"]
    assert len(rules) >= 8
    for rule in rules:
        assert rule["alert"] and rule["expr"], rule
        assert rule["labels"]["severity"] in ("page", "ticket"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]


def test_the_alerts_and_the_dashboard_use_only_published_metrics_and_labels():
    names = published()
    used = set()
    for expr in expressions():
        for name in re.findall(r"\b(gateway_[a-z_]+)", expr):
            assert name in names, f"{name} is not published by gateway/metrics.py: {expr}"
            used.add(name)
        grouped = {label.strip() for group in re.findall(r"\bby \(([^)]*)\)", expr) for label in group.split(",")}
        selected = set(re.findall(r"[{,]\s*([a-z_]+)\s*=~?", expr))
        metric_labels = set().union(*(names[n] for n in re.findall(r"\b(gateway_[a-z_]+)", expr)))
        unknown = (grouped | selected) - metric_labels - SCRAPE_LABELS - {""}
        assert not unknown, f"labels {unknown} are not labels of the metrics in: {expr}"
    # The operators' signals of the issue: RC 91/96, silent banks, pool, message log, unclosed dates.
    assert {"gateway_messages_total", "gateway_db_pool_idle", "gateway_message_log_backlog",
            "gateway_message_log_dropped", "gateway_business_dates_unclosed",
            "gateway_request_seconds_bucket"} <= used
