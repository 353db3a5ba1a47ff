"""Prometheus metrics (spec/http-api.md `/metrics`): messages by channel, bank, MTI/route, processing code
and RC; latency; requests in flight; connections; the database pool."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry()

MESSAGES = Counter("gateway_messages_total", "Answered requests", ["channel", "bank", "mti", "processing_code", "rc"],
                   registry=REGISTRY)
LATENCY = Histogram("gateway_request_seconds", "Time from request to answer", ["channel", "kind"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=REGISTRY)
IN_FLIGHT = Gauge("gateway_requests_in_flight", "Requests being processed", ["channel"], registry=REGISTRY)
CONNECTIONS = Gauge("gateway_iso_connections", "Open ISO 8583 connections", registry=REGISTRY)
POOL_SIZE = Gauge("gateway_db_pool_connections", "Database pool connections", registry=REGISTRY)
POOL_IDLE = Gauge("gateway_db_pool_idle", "Idle database pool connections", registry=REGISTRY)
MESSAGE_LOG_DROPPED = Gauge("gateway_message_log_dropped", "Message log rows dropped (queue full)",
                            registry=REGISTRY)
