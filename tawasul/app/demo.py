"""`tawasul demo`: the whole pipeline on embedded defaults with simulated contact-centre traffic.

local Kafka (if none answers)  ->  topics
tawasul worker  ·  tawasul sink (+ /metrics)  ·  tawasul wallboard      (child processes)
simulated traffic: the last days as history, then live at the chosen speed
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from tawasul.infra.settings import ENV_DATABASE_URL, ENV_KAFKA, ENV_POLICIES, Settings

log = logging.getLogger("tawasul.demo")
DUBAI = ZoneInfo("Asia/Dubai")


@dataclass(frozen=True)
class DemoOptions:
    history_days: float = 2.0
    speed: float = 1.0
    scale: float = 1.0
    seed: int = 7
    duration_s: float | None = None
    wallboard_port: int = 8088
    metrics_port: int = 9464
    worker_metrics_port: int = 9465
    traffic_only: bool = False


class DemoError(RuntimeError):
    """The demo could not start; the message says what is missing."""


def ensure_broker(settings: Settings, say: Callable[[str], None]) -> None:
    """Start the local broker when the configured one does not answer and it is the local default."""
    from tawasul.infra.kafka_local.broker import BrokerLayout, broker_answers, default_home, start

    if broker_answers(settings.kafka, timeout_s=3.0):
        return
    if settings.kafka not in ("localhost:9092", "127.0.0.1:9092"):
        raise DemoError(f"Kafka at {settings.kafka} does not answer")
    say("starting the local Kafka broker (tawasul kafka start)...")
    start(BrokerLayout(home=default_home()), echo=say)


def _require_free(port: int, option: str) -> None:
    """Raise `DemoError` when a port a demo service would listen on is taken (the services
    are child processes: their own error would only reach their log)."""
    from tawasul.infra.cli_options import listen_error
    from tawasul.infra.kafka_local.broker import bind_error

    exc = bind_error("0.0.0.0", port)
    if exc is not None:
        error = listen_error(exc, "0.0.0.0", port, option)
        raise DemoError(error.message if error else f"cannot listen on port {port}: {exc}") from exc


def _child_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env[ENV_KAFKA] = settings.kafka
    env[ENV_DATABASE_URL] = settings.database_url
    if settings.policies is not None:
        env[ENV_POLICIES] = str(settings.policies)
    return env


def _spawn(args: list[str], settings: Settings, log_dir: Path) -> subprocess.Popen[bytes]:
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / f"{args[0]}.log").open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "tawasul", *args],
            env=_child_env(settings),
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def traffic(options: DemoOptions, now: datetime) -> Iterator[tuple[str, dict[str, object]]]:
    """("history", event) for the last `history_days`, then ("live", event) paced from now on."""
    from producers.simulator import Params, iter_events, pace

    if options.history_days > 0:
        history = Params(
            start=now - timedelta(days=options.history_days), end=now, seed=options.seed, scale=options.scale, tag="h"
        )
        for event in iter_events(history):
            yield "history", event
    live = Params(start=now, end=now + timedelta(days=30), seed=options.seed + 1, scale=options.scale, tag="l")
    for event in pace(iter_events(live), speed=options.speed, rebase=options.speed != 1.0):
        yield "live", event


def publish_traffic(
    settings: Settings,
    options: DemoOptions,
    stop: threading.Event,
    say: Callable[[str], None],
    on_published: Callable[[int], None] = lambda n: None,
) -> int:
    """Publish the simulated traffic until `stop` is set; returns how many events were published
    (and tells `on_published` the running count)."""
    from producers.intake import Accepted, accept_object
    from producers.publisher import EventPublisher

    published = 0
    phase = ""
    with EventPublisher(settings, client_id="tawasul-demo") as publisher:
        for kind, raw in traffic(options, datetime.now(DUBAI)):
            if stop.is_set():
                break
            if kind != phase:
                if phase:
                    publisher.flush()
                    say(f"history published ({published} events); live traffic at speed {options.speed:g}")
                phase = kind
            outcome = accept_object(raw, f"demo:{published}", None)
            if isinstance(outcome, Accepted):
                publisher.route(outcome, source_kind="demo")
                published += 1
                on_published(published)
        publisher.flush()
    return published


class TrafficThread(threading.Thread):
    """Publishes the simulated traffic in the background; `published` and `error` tell the outcome."""

    def __init__(
        self, settings: Settings, options: DemoOptions, stop: threading.Event, say: Callable[[str], None]
    ) -> None:
        super().__init__(name="demo-traffic", daemon=True)
        self.settings, self.options, self.stop, self.say = settings, options, stop, say
        self.published = 0
        self.error: BaseException | None = None

    def _count(self, published: int) -> None:
        self.published = published

    def run(self) -> None:
        try:
            publish_traffic(self.settings, self.options, self.stop, self.say, on_published=self._count)
        except BaseException as exc:  # noqa: BLE001 - reported by the demo's main loop
            self.error = exc


def run_demo(
    settings: Settings,
    options: DemoOptions,
    say: Callable[[str], None] = print,
    log_dir: Path = Path(".tawasul") / "demo-logs",
) -> int:
    """Run until SIGINT/SIGTERM or `duration_s`; returns the number of events published."""
    from tawasul.infra.topics import ensure_topics

    if not options.traffic_only:
        for port, option in (
            (options.wallboard_port, "--wallboard-port"),
            (options.metrics_port, "--metrics-port"),
            (options.worker_metrics_port, "--worker-metrics-port"),
        ):
            _require_free(port, option)
    ensure_broker(settings, say)
    ensure_topics(settings.kafka, settings.topic_prefix)
    children: list[subprocess.Popen[bytes]] = []
    if not options.traffic_only:
        children = [
            _spawn(["worker", "--metrics-port", str(options.worker_metrics_port)], settings, log_dir),
            _spawn(["sink", "--metrics-port", str(options.metrics_port)], settings, log_dir),
            _spawn(["wallboard", "--port", str(options.wallboard_port)], settings, log_dir),
        ]
        say(f"wall display:  http://127.0.0.1:{options.wallboard_port}/")
        say(
            f"metrics:       http://127.0.0.1:{options.metrics_port}/metrics (sink), "
            f"http://127.0.0.1:{options.worker_metrics_port}/metrics (worker)"
        )
        say(f"database:      {settings.database_url}   logs: {log_dir}/")
        say("report:        tawasul report --from <date> --to <date> --format md")
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    if options.duration_s is not None:
        timer = threading.Timer(options.duration_s, stop.set)
        timer.daemon = True  # never keeps the process alive after Ctrl-C
        timer.start()
    sender = TrafficThread(settings, options, stop, say)
    try:
        sender.start()
        while not stop.is_set():
            for child in children:
                if child.poll() is not None:
                    command = child.args[3] if isinstance(child.args, list) else "?"  # _spawn passes a list
                    raise DemoError(f"`tawasul {command}` exited ({child.returncode}); see {log_dir}/")
            if sender.error is not None:
                raise DemoError(f"publishing the traffic failed: {sender.error}")
            stop.wait(1.0)
        sender.join(2)  # it may be sleeping until the next live event; it is a daemon thread
    finally:
        stop.set()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
    return sender.published
