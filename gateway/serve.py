"""``gateway serve``: the listeners, until SIGTERM/SIGINT; SIGHUP reloads the bank list and the relief programs."""
from __future__ import annotations

import asyncio
import shutil
import signal
import ssl
from pathlib import Path

import structlog
from aiohttp import web

from gateway import systemd
from gateway.bootstrap import Services, open_services
from gateway.config import Config, ConfigError, load_config, parse_listen
from gateway.domain import relief
from gateway.http.app import HttpServices, build_app
from gateway.http.protocol import GatewayRunner
from gateway.iso8583.messages import Router
from gateway.iso8583.server import IsoServer
from gateway.runtime import settle_heap
from gateway.service.context import ServiceContext
from gateway.service.housekeeping import housekeeping
from gateway.staff.accounts import audit_soon
from gateway.staff.dashboard import ConnectionPublisher
from gateway.supervisor import worker_slot

log = structlog.get_logger("gateway")


async def serve(config: Config, config_path: str | None) -> int:
    async with open_services(config) as services:
        message_log = services.message_log()
        message_log.start()
        # Inquiries answer after their one read; their quotes and keys follow in batches.
        inquiries = services.ctx.inquiries = services.inquiry_recorder()
        kid = services.keys.init()  # a first key on a new installation; an existing store is left alone
        log.info("proof signing key", kid=kid)
        if config.clock_offset_seconds:
            log.warning("testing clock offset in force", offset_seconds=config.clock_offset_seconds)
        # A worker of several (gateway/supervisor.py) shares its ports with its siblings.
        slot = worker_slot()
        iso = IsoServer(config, Router(services.engine), message_log, reuse_port=slot is not None)
        await iso.start()
        http = await _start_http(config, _http_services(services, message_log), reuse_port=slot is not None)
        # Partitions and purges: one worker is enough (each purge batch is its own transaction either way).
        today = lambda: services.ctx.business_date(services.ctx.clock.now())  # noqa: E731
        upkeep = asyncio.create_task(housekeeping(services.pool, config.database, today)) \
            if slot is None or slot[0] == 0 else None
        # What this instance's ISO 8583 listener holds, for the console's dashboard on every instance.
        publisher = ConnectionPublisher(services.pool, config.database, iso.connection_snapshot,
                                        config.iso8583.snapshot_interval_s)
        snapshots = asyncio.create_task(publisher.run())
        # systemd (gateway/systemd.py): this process's heart; a process of its own also notifies systemd.
        hearts = config.state_dir.resolve() / "heartbeat"
        if slot is None:
            shutil.rmtree(hearts, ignore_errors=True)
        heart = asyncio.create_task(systemd.Heartbeat(hearts, str(slot[0] if slot else 0)).run(services.pool))
        watchdog = asyncio.create_task(_notify_systemd(hearts)) if slot is None else None
        await _until_signalled(lambda: _reload(config_path, iso, services.ctx, audits=slot is None or slot[0] == 0),
                               ready=settle_heap)
        systemd.notify("STOPPING=1")
        log.info("shutting down: no new connections, finishing requests in flight")
        # Both listeners stop accepting first; then requests in flight finish (the runner's
        # shutdown_timeout bounds the HTTP side).
        await asyncio.gather(iso.shutdown(config.iso8583.drain_timeout_s), http.cleanup())
        snapshots.cancel()
        await asyncio.gather(snapshots, return_exceptions=True)  # no round may write after the withdrawal
        await publisher.withdraw()
        for task in (upkeep, heart, watchdog):
            if task is not None:
                task.cancel()
        await inquiries.close()
        await message_log.close()
    log.info("stopped")
    return 0


async def _notify_systemd(hearts: Path) -> None:
    """A gateway of one process: READY=1 once its heart beats, then WATCHDOG=1 while it keeps beating."""
    while not systemd.hearts_started(hearts, 1):
        await asyncio.sleep(0.1)
    systemd.notify("READY=1")
    interval = systemd.watchdog_interval_s()
    while interval is not None:
        if systemd.hearts_alive(hearts, 1):
            systemd.notify("WATCHDOG=1")
        await asyncio.sleep(interval)


def _http_services(services: Services, message_log) -> HttpServices:
    return HttpServices(engine=services.engine, pool=services.pool, config=services.config, keys=services.keys,
                        lookups=services.lookups, support=services.support, treasury=services.treasury,
                        tax_objects=services.tax_objects, dashboard=services.dashboard, message_log=message_log)


async def _start_http(config: Config, services: HttpServices, *, reuse_port: bool = False) -> web.AppRunner:
    host, port = parse_listen(config.http.listen)
    limits = config.http
    # Connection limits (operations.md "[http]"): a head not complete within head_timeout_s closes the
    # connection; idle_timeout_s between requests (aiohttp's keep-alive); one head of at most max_head_bytes,
    # which also bounds each line (a longer one is refused by the parser itself). Refused heads are answered
    # as problem details and logged without their contents (gateway/http/protocol.py).
    runner = GatewayRunner(build_app(services), access_log=None, shutdown_timeout=limits.drain_timeout_s,
                           keepalive_timeout=limits.idle_timeout_s, head_timeout_s=limits.head_timeout_s,
                           max_head_bytes=limits.max_head_bytes, max_line_size=limits.max_head_bytes,
                           max_field_size=limits.max_head_bytes, proxy_protocol_from=limits.proxy_protocol_from)
    await runner.setup()
    ssl_context = None
    if config.iso8583.tls_cert:
        # The HTTP listener uses the same server certificate and client CA as ISO 8583.
        ssl_context = IsoServer.tls_context(config.iso8583)
        if config.iso8583.tls_client_ca:
            # Public routes (proof checks) take no certificate; banks with one configured must present it.
            ssl_context.verify_mode = ssl.CERT_OPTIONAL
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context, reuse_address=True, reuse_port=reuse_port or None)
    await site.start()
    log.info("http listening", address=f"{host}:{port}")
    return runner


async def _until_signalled(on_reload, ready) -> None:
    """Until SIGTERM or SIGINT; SIGHUP calls ``on_reload``. ``ready`` runs once the handlers are in place."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, on_reload)
    # A worker starts with SIGHUP blocked (gateway/supervisor.py); one that came meanwhile is delivered now,
    # to the handler above, and reloads what the worker read at its start. A no-op for a process of its own.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})
    ready()
    log.info("gateway ready")
    await stop.wait()


def _reload(config_path: str | None, iso: IsoServer, ctx: ServiceContext, audits: bool = True) -> None:
    """SIGHUP: the bank list and the relief programs, replaced whole, or neither when the file is invalid.
    Every worker reloads; one (``audits``) writes the reload, and the relief programs' change, to the audit
    log."""
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        log.error("reload refused: configuration error; keeping the current banks and relief programs",
                  error=str(exc))
        return
    ctx.banks = {b.code: b for b in config.banks}
    iso.reload(config)
    relief_changed = relief.changes(ctx.programs, config.relief)
    ctx.relief = config.relief
    if audits:  # one row per reload, however many workers applied it
        audit_soon(ctx.pool, "system", "config.reload", config_path or None,
                   {"banks": sorted(ctx.banks), "relief": [p.id for p in config.relief]})
    if relief_changed is not None:
        log.info("relief programs reloaded", added=relief_changed["added"], removed=relief_changed["removed"],
                 changed=relief_changed["changed"])
        if audits:
            audit_soon(ctx.pool, "system", "relief.reload", config_path or None, relief_changed)
