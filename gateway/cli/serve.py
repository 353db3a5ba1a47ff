"""``gateway serve``: the listeners until SIGTERM/SIGINT (the work is ``gateway.serve.serve``)."""
from __future__ import annotations

import argparse
import signal

from gateway.config import Config
from gateway.runtime import run_fast


def serve_until_stopped(config: Config, config_path: str | None) -> int:
    """Structured logs, then the listeners on uvloop; also the last step of ``gateway demo run``.

    ``config_path`` is what SIGHUP reloads the bank list from.
    """
    from gateway.logs import configure
    from gateway.serve import serve

    configure()
    return run_fast(serve(config, config_path))


def serve_command(config: Config, args: argparse.Namespace) -> int:
    """One process, or a supervisor of ``[server] workers`` processes (gateway/supervisor.py)."""
    from gateway.supervisor import worker_count, worker_slot

    # A reload asked for while the process is still starting (migrations, the embedded database, the pool)
    # waits, pending, until the process has its handler in place and unblocks it: SIGHUP's default action
    # would end the process. The supervisor and each worker unblock it once they can reload.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
    if worker_slot() is None and worker_count(config) > 1:
        from gateway.logs import configure
        from gateway.supervisor import supervise

        configure()
        return supervise(config, args.config)
    return serve_until_stopped(config, args.config)
