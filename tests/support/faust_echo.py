"""A faust app for tests: consume a topic and append `partition<TAB>key<TAB>value` lines to a file.

Run: python -m tests.support.faust_echo BOOTSTRAP TOPIC APP_ID OUT_FILE EXPECTED
It stops itself (SIGTERM, a clean faust shutdown) once EXPECTED records were written.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import faust


def build(bootstrap: str, topic_name: str, app_id: str, out_file: str, expected: int) -> faust.App:
    app = faust.App(
        app_id,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        topic_allow_declare=False,
        datadir=Path(out_file).parent / f"{app_id}-data",
    )
    topic = app.topic(topic_name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    counter = {"seen": 0}

    @app.agent(topic, concurrency=1)
    async def echo(stream: faust.StreamT) -> None:
        with open(out_file, "a", encoding="utf-8") as out:
            async for event in stream.events():
                out.write(f"{event.message.partition}\t{event.key.decode()}\t{event.value.decode()}\n")
                counter["seen"] += 1
                if counter["seen"] >= expected:
                    out.flush()
                    os.kill(os.getpid(), signal.SIGTERM)

    return app


if __name__ == "__main__":
    bootstrap, topic_name, app_id, out_file, expected = sys.argv[1:6]
    application = build(bootstrap, topic_name, app_id, out_file, int(expected))
    sys.argv = [sys.argv[0], "worker", "--loglevel", "warn", "--without-web"]
    application.main()
