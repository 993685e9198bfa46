"""Benchmark of the wall display's delay: from an event's publication to its figure changing in a
real headless Chromium page, at a steady rate (default 100 events/s).

The whole live path runs: `call.offered` events are published to Kafka (own topic prefix); the
real sink (`tawasul sink`, subprocess) stores them; the wall display (`tawasul wallboard`,
subprocess) learns of each commit (SQLite `PRAGMA data_version`, or PostgreSQL LISTEN/NOTIFY
with `--db postgresql+psycopg://...`) and pushes the board by Server-Sent Events; a
MutationObserver in the page records when "calls offered today" changes and to what.

The delay of the i-th event is from just before it was sent to the first moment the page shows
at least i + 1 more calls than before the run (the i-th event's call, or as many others).

Run: `python bench/bench_wallboard.py [--rate 100 --seconds 20 --db URL --batch-wait 0.1]`.
Needs a running broker (`TAWASUL_KAFKA`, default localhost:9092) and the `chromium` package.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kafka import KafkaProducer  # noqa: E402  # after the sys.path set-up above

from bench.bench_publish import delete_topics  # noqa: E402  # after the sys.path set-up above
from sinks.db.migrate import upgrade  # noqa: E402  # after the sys.path set-up above
from tawasul.infra.topics import EVENTS, ensure_topics  # noqa: E402  # after the sys.path set-up above
from tests.support.chromium import Chromium  # noqa: E402  # after the sys.path set-up above

OBSERVE = """(() => {
  window.__offered = [];
  const node = document.getElementById("calls-offered");
  const read = () => window.__offered.push([Date.now(), Number(node.textContent.replace(/[^0-9]/g, "")) || 0]);
  new MutationObserver(read).observe(node, { childList: true, characterData: true, subtree: true });
  read();
})()"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def offered(subject: str) -> bytes:
    stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return json.dumps(
        {
            "specversion": "1.0",
            "id": uuid.uuid4().hex,
            "source": "/bench",
            "type": "call.offered",
            "time": stamp,
            "subject": subject,
            "data": {"queue": "general"},
        }
    ).encode()


def wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer") from None
            time.sleep(0.2)


def own_schema(url: str, schema: str) -> str:
    """PostgreSQL: a schema of this run's own (dropped at the end), so that nothing else is touched."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


def drop_schema(url: str, schema: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


async def measure(
    url: str, producer: KafkaProducer, topic: str, rate: float, seconds: float, workdir: Path, tag: str
) -> tuple[list[float], int]:
    async with Chromium(workdir / "profile") as browser:
        page = await browser.page(1920, 1080)
        await page.goto(url)
        await page.wait_for("document.documentElement.dataset.live === 'live'", timeout=60)
        # warm-up: the sink has its partitions once one call shows
        producer.send(topic, key=f"C-{tag}-warm".encode(), value=offered(f"C-{tag}-warm"))
        producer.flush()
        await page.wait_for(
            "Number(document.getElementById('calls-offered').textContent.replace(/[^0-9]/g, '')) >= 1", timeout=120
        )
        await asyncio.sleep(1.0)
        await page.evaluate(OBSERVE)
        base = int((await page.evaluate("window.__offered"))[-1][1])
        total = int(rate * seconds)
        sent_at: list[float] = []
        start = time.time()
        for number in range(total):
            due = start + number / rate
            pause = due - time.time()
            if pause > 0:
                await asyncio.sleep(pause)
            subject = f"C-{tag}-{number:06d}"
            sent_at.append(time.time() * 1000)
            producer.send(topic, key=subject.encode(), value=offered(subject))
            if number % 10 == 9:
                producer.flush()
        producer.flush()
        await page.wait_for(f"window.__offered.at(-1)[1] >= {base + total}", timeout=120)
        changes = await page.evaluate("window.__offered")
    delays = []
    for index, sent in enumerate(sent_at):
        shown = next(at for at, value in changes if value >= base + index + 1)
        delays.append((shown - sent) / 1000)
    return delays, len(changes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kafka", default=os.environ.get("TAWASUL_KAFKA", "localhost:9092"))
    parser.add_argument("--rate", type=float, default=100.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--db", default=None, help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--batch-wait", default="0.1", help="the sink's --batch-wait")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-wallboard-") as tmp:
        workdir = Path(tmp)
        tag = uuid.uuid4().hex[:8]
        url = own_schema(args.db, f"bench_wb_{tag}") if args.db else f"sqlite:///{workdir / 'tawasul.db'}"
        upgrade(url)
        prefix = f"bench-wb-{tag}."
        ensure_topics(args.kafka, prefix)
        env = {**os.environ, "TAWASUL_KAFKA": args.kafka, "TAWASUL_TOPIC_PREFIX": prefix, "TAWASUL_DATABASE_URL": url}
        port, metrics = free_port(), free_port()
        tawasul = [sys.executable, "-m", "tawasul"]
        sink = subprocess.Popen(
            [*tawasul, "sink", "--batch-wait", args.batch_wait, "--metrics-port", str(metrics)],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=(workdir / "sink.log").open("wb"),
        )
        wall = subprocess.Popen(
            [*tawasul, "wallboard", "--port", str(port)],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=(workdir / "wallboard.log").open("wb"),
        )
        producer = KafkaProducer(bootstrap_servers=args.kafka, linger_ms=2)
        try:
            wait_http(f"http://127.0.0.1:{port}/healthz", wall)
            delays, changes = asyncio.run(
                measure(
                    f"http://127.0.0.1:{port}/", producer, prefix + EVENTS.name, args.rate, args.seconds, workdir, tag
                )
            )
        finally:
            producer.close()
            for process in (wall, sink):
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
            if args.db:
                drop_schema(args.db, f"bench_wb_{tag}")
            delete_topics(args.kafka, [prefix])
    backend = url.split(":", 1)[0]
    print(
        f"wall display delay, publication -> figure changed in Chromium ({backend}, sink --batch-wait "
        f"{args.batch_wait} s): {len(delays)} events at {args.rate:g}/s, {changes} page updates"
    )
    print(
        f"  p50 {percentile(delays, 0.50):.3f} s   p99 {percentile(delays, 0.99):.3f} s   "
        f"max {max(delays):.3f} s   mean {statistics.fmean(delays):.3f} s   (goal: p99 < 2 s)"
    )
    print(f"  machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, Python {platform.python_version()}")


if __name__ == "__main__":
    main()
