"""Prometheus metrics (spec/http-api.md `/metrics`): messages by channel, bank, MTI/route, processing code
and RC; latency; requests in flight; connections; the database pool."""
from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

REGISTRY = CollectorRegistry()
# With several worker processes (gateway/supervisor.py) each writes its values to files in this directory
# (prometheus_client's multiprocess mode) and a scrape of any worker answers the sum over all of them; a
# gauge counts only the workers alive ("livesum").
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

MESSAGES = Counter("gateway_messages_total", "Answered requests", ["channel", "bank", "mti", "processing_code", "rc"],
                   registry=REGISTRY)
LATENCY = Histogram("gateway_request_seconds", "Time from request to answer", ["channel", "kind"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=REGISTRY)
IN_FLIGHT = Gauge("gateway_requests_in_flight", "Requests being processed", ["channel"], registry=REGISTRY,
                  multiprocess_mode="livesum")
CONNECTIONS = Gauge("gateway_iso_connections", "Open ISO 8583 connections", registry=REGISTRY,
                    multiprocess_mode="livesum")
POOL_SIZE = Gauge("gateway_db_pool_connections", "Database pool connections", registry=REGISTRY,
                  multiprocess_mode="livesum")
POOL_IDLE = Gauge("gateway_db_pool_idle", "Idle database pool connections", registry=REGISTRY,
                  multiprocess_mode="livesum")
MESSAGE_LOG_DROPPED = Gauge("gateway_message_log_dropped", "Message log rows dropped (queue full)",
                            registry=REGISTRY, multiprocess_mode="livesum")
MESSAGE_LOG_BACKLOG = Gauge("gateway_message_log_backlog", "Message log rows queued, not yet written",
                            registry=REGISTRY, multiprocess_mode="livesum")
MESSAGE_LOG_ROWS = Counter("gateway_message_log_rows_total", "Message log rows by outcome", ["outcome"],
                           registry=REGISTRY)
INQUIRY_RECORDS = Counter("gateway_inquiry_records_total",
                          "Approved inquiries' quotes and keys written behind their answers, by outcome", ["outcome"],
                          registry=REGISTRY)
BILL_WAITERS = Gauge("gateway_bill_requests", "Payment requests holding or waiting for their bill's turn in this process",
                     registry=REGISTRY, multiprocess_mode="livesum")
UNCLOSED_DATES = Gauge("gateway_business_dates_unclosed",
                       "Business dates before the current one that are not closed (set by housekeeping)",
                       registry=REGISTRY, multiprocess_mode="max")


def exposition() -> bytes:
    """What ``/metrics`` answers: this process's registry, or the sum over every worker's files."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def forget_process(pid: int) -> None:
    """A dead worker's live gauges no longer count (its counters stay in the sums)."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)
