"""``gateway serve`` on every core: a supervisor and ``[server] workers`` worker processes.

One Python process uses one core. The supervisor does once what must happen once — start the embedded
database, run the migrations, create the first proof key — and then starts the workers: each is
``gateway serve`` itself, told by ``GATEWAY_WORKER=K/N`` that it is worker K of N, binding the same ISO 8583
and HTTP ports with SO_REUSEPORT so that the kernel spreads new connections over them. A worker has its own
pool and message-log writer; workers share only PostgreSQL, exactly as separate instances behind a balancer
do, so every invariant that holds across instances holds across workers.

SIGTERM/SIGINT and SIGHUP are passed to every worker (a worker still starting keeps its SIGHUP pending until it
can reload). A worker that dies is started again (its own
connections are lost, the others' are not); one that keeps dying at once stops the whole gateway rather
than spin. After a SIGTERM the supervisor waits for its workers to drain and exits.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import structlog

from gateway import metrics, systemd
from gateway.config import Config

log = structlog.get_logger("gateway.supervisor")

WORKER_ENV = "GATEWAY_WORKER"
# A worker that dies this soon after its start counts as failing at once; this many such deaths in a row
# stop the gateway.
QUICK_DEATH_S = 5.0
MAX_QUICK_DEATHS = 5
POLL_S = 0.2


def _before_worker_runs() -> None:
    """In the worker, between fork and exec.

    SIGHUP is blocked: a reload passed on while the worker is still starting (importing, opening its pool,
    binding its ports) would otherwise meet the default action and end it. The signal waits, pending, until
    the worker has its handler in place and unblocks it (gateway/serve.py); the mask survives exec.

    And the kernel kills the worker when the supervisor dies, however it dies (a SIGKILLed supervisor must
    not leave workers holding the ports, as a killed single process would not)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the supervisor's own SIGTERM handling remains
        pass


def worker_slot() -> tuple[int, int] | None:
    """(K, N) when this process is worker K of N, else None."""
    raw = os.environ.get(WORKER_ENV, "")
    try:
        k, n = (int(part) for part in raw.split("/"))
    except ValueError:
        return None
    return (k, n) if 0 <= k < n else None


def worker_count(config: Config) -> int:
    return config.server.workers or os.cpu_count() or 1


class Supervisor:
    def __init__(self, command: list[str], env: dict[str, str], count: int, drain_s: float,
                 hearts: Path | None = None):
        self.command = command
        # The workers never speak to systemd themselves: the supervisor does, for all of them.
        self.env = {k: v for k, v in env.items() if k not in (systemd.NOTIFY_ENV, "WATCHDOG_USEC", "WATCHDOG_PID")}
        self.hearts = hearts
        self.count = count
        self.drain_s = drain_s
        self.workers: dict[int, subprocess.Popen] = {}
        self.started: dict[int, float] = {}
        self.quick_deaths = 0
        self.stopping = False
        self.failed = False

    def start(self, k: int) -> None:
        env = {**self.env, WORKER_ENV: f"{k}/{self.count}"}
        self.workers[k] = subprocess.Popen(self.command, env=env, preexec_fn=_before_worker_runs)
        self.started[k] = time.monotonic()
        log.info("worker started", worker=k, pid=self.workers[k].pid)

    def signal_all(self, signum: int) -> None:
        for process in self.workers.values():
            if process.poll() is None:
                process.send_signal(signum)

    def run(self) -> int:
        def stop(signum, frame) -> None:
            self.stopping = True
            self.signal_all(signal.SIGTERM)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, lambda signum, frame: self.signal_all(signal.SIGHUP))
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})  # blocked until now (gateway/cli/serve.py)
        for k in range(self.count):
            self.start(k)
        ready = False
        interval = systemd.watchdog_interval_s()
        fed = 0.0
        while not self.stopping:
            self._reap()
            # systemd (gateway/systemd.py): ready once every worker's heart beats; the watchdog fed while
            # every worker's heart keeps beating.
            if self.hearts is not None:
                if not ready and systemd.hearts_started(self.hearts, self.count):
                    systemd.notify("READY=1")
                    ready = True
                if ready and interval is not None and time.monotonic() - fed >= interval \
                        and systemd.hearts_alive(self.hearts, self.count):
                    systemd.notify("WATCHDOG=1")
                    fed = time.monotonic()
            time.sleep(POLL_S)
        systemd.notify("STOPPING=1")
        return self._drain()

    def _reap(self) -> None:
        for k, process in list(self.workers.items()):
            code = process.poll()
            if code is None or self.stopping:
                continue
            lived = time.monotonic() - self.started[k]
            self.quick_deaths = self.quick_deaths + 1 if lived < QUICK_DEATH_S else 0
            log.error("worker died; starting it again", worker=k, pid=process.pid, exit_code=code,
                      lived_s=round(lived, 1))
            metrics.forget_process(process.pid)
            if self.quick_deaths >= MAX_QUICK_DEATHS:
                log.error("workers keep dying at start; stopping the gateway")
                self.failed = self.stopping = True
                self.signal_all(signal.SIGTERM)
                return
            self.start(k)

    def _drain(self) -> int:
        deadline = time.monotonic() + self.drain_s + 15
        for k, process in self.workers.items():
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                log.error("worker did not stop in time; killed", worker=k, pid=process.pid)
                process.kill()
                process.wait()
        log.info("stopped")
        return 1 if self.failed else 0


def supervise(config: Config, config_path: str | None) -> int:
    """Prepare once, then run ``worker_count(config)`` workers until SIGTERM (module docstring)."""
    from gateway.bootstrap import prepared

    count = worker_count(config)
    with prepared(config) as dsn:
        # The workers' metrics files (gateway/metrics.py), fresh for this run: a scrape sums them.
        metrics_dir = config.state_dir.resolve() / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ[metrics.MULTIPROC_ENV] = str(metrics_dir)
        env = dict(os.environ)
        if not config.database.url:
            env["GATEWAY_DATABASE_URL"] = dsn  # the embedded cluster this process started, for the workers
        command = [sys.executable, "-m", "gateway", "serve"] + (["--config", config_path] if config_path else [])
        log.info("supervisor starting workers", workers=count)
        drain_s = max(config.iso8583.drain_timeout_s, config.http.drain_timeout_s)
        hearts = config.state_dir.resolve() / "heartbeat"
        shutil.rmtree(hearts, ignore_errors=True)
        return Supervisor(command, env, count, drain_s, hearts).run()
