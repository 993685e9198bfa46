"""Benchmark: memory of the KPI aggregator per open ticket (records, table values, book).

Folds N tickets (a `ticket.opened` event and a ticket-state message each, as the faust
processor receives them) through `KpiFold` into a `TableStore` whose table is a dict of the
encoded values (what the faust table holds in memory), and prints the bytes per ticket that
tracemalloc sees, split into the decoded records + book and the table's keys and values.

Usage: python bench/bench_kpi_memory.py [--tickets 20000]
"""

from __future__ import annotations

import argparse
import gc
import json
import tracemalloc
from datetime import datetime, timedelta

from schemas import new_event
from stream_processors.kpi_input import EVENT, STATE, TableStore, decode_record, fold_batch, pack
from tawasul.domain.kpi_book import KpiBook, rebuild
from tawasul.domain.kpi_fold import KpiFold
from tawasul.domain.kpi_tallies import KpiConfig

START = datetime.fromisoformat("2025-03-04T08:00:00+04:00")
CATEGORIES = ("mosque.cleaning", "crm.permit", "crm.certificate", "zakat.claim", "quran.enrolment")


def batches(tickets: int, size: int = 200) -> list[tuple[bytes, bytes]]:
    """The input messages: the tickets' openings, then their states, `size` items a message."""
    events, states = [], []
    for n in range(tickets):
        ticket = f"T-{n:08d}"
        at = START + timedelta(seconds=n)
        data = {"channel": "crm", "kind": "request", "category": CATEGORIES[n % 5], "priority": "normal"}
        events.append(new_event("ticket.opened", ticket, at.isoformat(), data, "/bench").to_json())
        state = {
            "ticket_id": ticket,
            "channel": "crm",
            "kind": "request",
            "category": CATEGORIES[n % 5],
            "priority": "normal",
            "status": "open",
            "policy": "default",
            "updated_at": at.isoformat(),
            "version": 1,
            "targets": {"first_response": {"state": "running", "warned": n % 7 == 0, "breached": False}},
        }
        states.append(json.dumps(state).encode())
    out = [(pack(events[i : i + size]), EVENT) for i in range(0, tickets, size)]
    return out + [(pack(states[i : i + size]), STATE) for i in range(0, tickets, size)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=20_000)
    options = parser.parse_args()
    messages = batches(options.tickets)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    table: dict[bytes, bytes] = {}
    fold = KpiFold(KpiBook(KpiConfig(), 0), TableStore(table))
    for value, kind in messages:
        fold_batch(fold, value, kind)
    gc.collect()
    after = tracemalloc.take_snapshot()
    total = sum(s.size_diff for s in after.compare_to(before, "filename"))
    table_bytes = sum(len(k) + len(v) + 2 * 33 for k, v in table.items())  # bytes objects: 33 bytes of header
    n = options.tickets
    opened = sum(1 for r in fold.book.now_rows() if r.figure == "tickets.open" and r.scope == ())
    print(f"{n:,} open tickets ({opened} total row): {total / n:,.0f} bytes per ticket in all (tracemalloc)")
    print(f"  table keys and values (encoded JSON): {table_bytes / n:,.0f} bytes per ticket")
    print(f"  decoded records, book and dict slots: {(total - table_bytes) / n:,.0f} bytes per ticket")
    print(f"  1,000,000 open tickets: about {total / n * 1e6 / 2**30:.2f} GiB")
    del fold
    gc.collect()
    before = tracemalloc.take_snapshot()
    store = TableStore(table, [r for r in map(decode_record, table.values()) if r is not None])
    book = rebuild(KpiConfig(), store.records.values())
    gc.collect()
    after = tracemalloc.take_snapshot()
    rebuilt = sum(s.size_diff for s in after.compare_to(before, "filename"))
    print(f"after a restart (records decoded from the table, book rebuilt): {rebuilt / n:,.0f} bytes per ticket")
    print(f"  besides the table; {len(book):,} subjects")


if __name__ == "__main__":
    main()
