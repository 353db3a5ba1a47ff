"""``gateway serve``: the listeners, until SIGTERM/SIGINT; SIGHUP reloads the bank list."""
from __future__ import annotations

import asyncio
import signal
import ssl

import structlog

from gateway.clock import Clock
from gateway.config import Config, ConfigError, load_config
from aiohttp import web

from gateway.config import parse_listen
from gateway.http.app import HttpServices, build_app
from gateway.iso8583.messages import Router
from gateway.iso8583.server import IsoServer
from gateway.payment.context import ServiceContext
from gateway.proofs.keys import KeyStore
from gateway.staff.accounts import audit_soon
from gateway.payment.engine import Engine
from gateway.store.db import create_pool, database_url
from gateway.store.message_log import MessageLog
from gateway.store.migrate import migrate

log = structlog.get_logger("gateway")

SHUTDOWN_GRACE_S = 10.0
# Message-log partitions are created this many months ahead, at start and daily.
PARTITION_MONTHS_AHEAD = 3
RETENTION_DAYS = 400
HOUSEKEEPING_INTERVAL_S = 600


async def serve(config: Config, config_path: str | None) -> int:
    with database_url(config) as dsn:
        pool = await create_pool(config.database, dsn)
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
            message_log = MessageLog(pool)
            message_log.start()
            keys = KeyStore(config.proof.key_dir)
            kid = keys.init()  # a first key on a new installation; an existing store is left alone
            log.info("proof signing key", kid=kid)
            ctx = ServiceContext(pool=pool, clock=Clock(config.clock_offset_seconds), config=config, keys=keys)
            if config.clock_offset_seconds:
                log.warning("testing clock offset in force", offset_seconds=config.clock_offset_seconds)
            engine = Engine(ctx)
            iso = IsoServer(config, Router(engine), message_log)
            await iso.start()
            http = await _start_http(config, HttpServices(engine=engine, pool=pool, config=config, keys=keys,
                                                          message_log=message_log))
            housekeeping = asyncio.create_task(_housekeeping(pool))
            await _until_signalled(lambda: _reload(config_path, iso, ctx))
            log.info("shutting down: no new connections, finishing requests in flight")
            # Both listeners stop accepting first; then requests in flight finish (the runner's
            # shutdown_timeout bounds the HTTP side).
            await asyncio.gather(iso.shutdown(SHUTDOWN_GRACE_S), http.cleanup())
            housekeeping.cancel()
            await message_log.close()
        finally:
            await pool.close()
    log.info("stopped")
    return 0


async def _start_http(config: Config, services: HttpServices) -> web.AppRunner:
    host, port = parse_listen(config.http.listen)
    runner = web.AppRunner(build_app(services), access_log=None, shutdown_timeout=SHUTDOWN_GRACE_S)
    await runner.setup()
    ssl_context = None
    if config.iso8583.tls_cert:
        # The HTTP listener uses the same server certificate and client CA as ISO 8583.
        ssl_context = IsoServer.tls_context(config.iso8583)
        if config.iso8583.tls_client_ca:
            # Public routes (proof checks) take no certificate; banks with one configured must present it.
            ssl_context.verify_mode = ssl.CERT_OPTIONAL
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context, reuse_address=True)
    await site.start()
    log.info("http listening", address=f"{host}:{port}")
    return runner


async def _until_signalled(on_reload) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, on_reload)
    log.info("gateway ready")
    await stop.wait()


def _reload(config_path: str | None, iso: IsoServer, ctx: ServiceContext) -> None:
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        log.error("reload refused: configuration error; keeping the current bank list", error=str(exc))
        return
    ctx.banks = {b.code: b for b in config.banks}
    iso.reload(config)
    audit_soon(ctx.pool, "system", "config.reload", config_path or None, {"banks": sorted(ctx.banks)})


async def _housekeeping(pool) -> None:
    while True:
        try:
            async with pool.acquire(timeout=5) as conn:
                await conn.execute("SELECT gw_message_log_partitions(current_date, $1)", PARTITION_MONTHS_AHEAD)
                dropped = await conn.fetchval("SELECT gw_message_log_retention(now(), $1)", RETENTION_DAYS)
                await conn.execute("DELETE FROM http_nonces WHERE seen_at < now() - interval '15 minutes'")
                if dropped:
                    log.info("message log months dropped", partitions=dropped)
        except Exception as exc:  # noqa: BLE001 - retried on the next round
            log.warning("housekeeping failed", error=repr(exc))
        await asyncio.sleep(HOUSEKEEPING_INTERVAL_S)
