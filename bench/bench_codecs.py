"""CPU per message of the codecs: today's pydantic path against the msgspec fast path.

    python bench/bench_codecs.py                 # 20,000 simulated events, best of 5 rounds
    python bench/bench_codecs.py --events 100000 --rounds 3

Simulated input events (`producers.simulator`) and the processors' outputs (SLA outcomes, KPI
snapshots, ticket states) are decoded and encoded in one process; each figure is CPU time
(`time.process_time`) per message, the best of `--rounds` rounds, all measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import msgspec  # noqa: E402

from producers.simulator import Params, iter_events, parse_when  # noqa: E402
from schemas import decode_event  # noqa: E402
from schemas.codec import encode_json  # noqa: E402
from schemas.examples import example_event  # noqa: E402
from schemas.fast import check_event, fast_decode  # noqa: E402
from schemas.fast_types import ANY_ENVELOPE  # noqa: E402
from schemas.parsing import explain_decode  # noqa: E402
from schemas.ticket_state import (  # noqa: E402
    TicketStateMessage,
    TicketTarget,
    decode_ticket_state,
    encode_ticket_state,
    state_as_dict,
)


def simulated(count: int) -> list[bytes]:
    """`count` simulated input events as the Kafka message values `tawasul publish` sends."""
    start = parse_when("2025-03-02")
    out: list[bytes] = []
    week = 0
    while len(out) < count:
        begin = start + timedelta(days=7 * week)
        params = Params(begin, begin + timedelta(days=7), seed=week + 1, scale=max(0.05, count / 8_000), tag=f"b{week}")
        for event in iter_events(params):
            out.append(json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode())
            if len(out) >= count:
                break
        week += 1
    return out


def outputs(count: int) -> list[bytes]:
    """SLA outcomes and KPI snapshots, with distinct ids."""
    kinds = ["sla.warning", "sla.breached", "sla.met", "kpi.snapshot"]
    out = []
    for n in range(count):
        raw = json.loads(example_event(kinds[n % len(kinds)]).to_json())
        raw["id"] = f"{raw['id']}-{n}"
        out.append(json.dumps(raw, separators=(",", ":")).encode())
    return out


def cpu_us(work: Callable[[Any], object], values: Sequence[Any], rounds: int) -> float:
    """Best CPU microseconds per value of `work` over `rounds` passes."""
    best = float("inf")
    for _ in range(rounds):
        began = time.process_time()
        for value in values:
            work(value)
        best = min(best, time.process_time() - began)
    return best / len(values) * 1e6


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    events = simulated(args.events)
    pipeline = outputs(max(1, args.events // 4))
    typed = msgspec.json.Decoder(ANY_ENVELOPE)
    print(f"python {platform.python_version()}, msgspec {msgspec.__version__}, load {os.getloadavg()[0]:.1f}")
    print(f"{len(events):,} input events ({sum(map(len, events)) / len(events):.0f} B avg), {len(pipeline):,} outputs")
    rows = [
        ("input events: pydantic path (before)", explain_decode, events),
        ("input events: decode_event (after)", decode_event, events),
        ("input events: fast path alone", lambda v: fast_decode(v.decode()), events),
        ("input events: check_event (no pydantic objects)", lambda v: check_event(v.decode()), events),
        ("input events: msgspec typed decode only", typed.decode, events),
        ("input events: json.loads only", json.loads, events),
        ("outcomes+snapshots: pydantic path (before)", explain_decode, pipeline),
        ("outcomes+snapshots: decode_event (after)", decode_event, pipeline),
    ]
    bodies = [json.loads(v) for v in pipeline]
    states = ticket_states(len(pipeline))
    state_bytes = [encode_ticket_state(m) for m in states]
    rows += [
        ("outputs: json.dumps of the body (before)", standard_json, bodies),
        ("outputs: schemas.codec.encode_json (after)", encode_json, bodies),
        ("ticket state: json.dumps of the dict (before)", standard_json, [state_as_dict(m) for m in states]),
        ("ticket state: encode_ticket_state (after)", encode_ticket_state, states),
        ("ticket state: json.loads only", json.loads, state_bytes),
        ("ticket state: decode_ticket_state (typed, checked)", decode_ticket_state, state_bytes),
    ]
    for label, work, values in rows:
        print(f"{label:<52} {cpu_us(work, values, args.rounds):7.2f} us/message")
    return 0


def standard_json(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def ticket_states(count: int) -> list[TicketStateMessage]:
    """Ticket states as the SLA engine writes them (two targets, UTC times)."""
    target = TicketTarget(deadline="2025-03-04T10:00:00+04:00", state="running", warned=False, breached=False)
    return [
        TicketStateMessage(
            ticket_id=f"T-2025-{n:07d}",
            channel="crm",
            kind="complaint",
            category="mosque.air_conditioning",
            priority="high",
            department="mosque_affairs",
            status="open",
            policy="crm-high",
            opened_at="2025-03-04T05:12:30+00:00",
            updated_at="2025-03-04T05:40:00.250000+00:00",
            version=n % 7 + 1,
            targets={"first_response": target, "resolution": target},
            policies_sha256="0" * 64,
        )
        for n in range(count)
    ]


if __name__ == "__main__":
    raise SystemExit(main())
