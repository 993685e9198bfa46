"""The period report as Markdown, in English or Arabic (right to left), from its typed result.

The layout follows the department's half-year report: headline figures per channel, customer
satisfaction, the share of tickets handled within their deadline, then the details per
channel, per kind and the categories with breaches. The words are in `report_texts`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sinks.report_texts import LANGUAGES, NAMES, TEXTS
from tawasul.domain.period import REPORT_OFFSET, Period
from tawasul.domain.report_result import (
    CallFigures,
    CategoryBreaches,
    Report,
    ReportBy,
    TargetFigures,
    TicketFigures,
    TicketGroup,
    WalkInFigures,
)

__all__ = ["LANGUAGES", "RenderError", "render_by_markdown", "render_markdown"]

Texts = Mapping[str, Any]


class RenderError(ValueError):
    """The report cannot be rendered (unknown language)."""


def render_markdown(report: Report, lang: str = "en") -> str:
    """The report (`build_report`) as a Markdown document."""
    t = _texts(lang)
    calls, tickets, walk_in = report.calls, report.tickets, report.walk_in
    lines = _headlines(t, calls, tickets, walk_in)
    lines += [f"## {t['calls']}", "", *_figure_table(t, _call_rows(t, calls)), ""]
    lines += [f"## {t['tickets']}", "", *_figure_table(t, _ticket_rows(t, tickets)), ""]
    for key, column, groups in (
        ("by_channel", "channel_col", tickets.by_channel),
        ("by_kind", "kind_col", tickets.by_kind),
    ):
        lines += [f"### {t[key]}", "", *_groups(groups, t, NAMES[lang], t[column]), ""]
    lines += [f"### {t['breaches']}", "", *_breaches(tickets.breaches_by_category, t), ""]
    lines += [f"## {t['walk_in']}", "", *_figure_table(t, _walk_in_rows(t, walk_in)), ""]
    if report.unmatched_surveys:
        lines += [t["unmatched"].format(count=_n(report.unmatched_surveys)), ""]
    return _document(lang, t["title"], report.period, report.policies, lines)


def render_by_markdown(report: ReportBy, lang: str = "en") -> str:
    """The report per agent or team (`report_by.build_report_by`) as Markdown."""
    t = _texts(lang)
    header = (
        t[report.by],
        t["calls_answered"],
        t["aht"],
        t["tickets_assigned"],
        t["first_response"],
        t["resolution"],
        t["responses"],
        t["satisfaction"],
    )
    rows = [
        (
            t["nobody"] if g.name is None else f"`{g.name}`",
            _n(g.calls_answered),
            _secs(g.average_handle_seconds, t),
            _n(g.tickets_assigned),
            _targets(g.first_response, t),
            _targets(g.resolution, t),
            _n(g.surveys),
            _pct(g.satisfaction, t),
        )
        for g in report.groups
    ]
    lines = [*_table(header, rows), ""] if rows else [t["no_groups"], ""]
    lines += [t["by_note"], ""]
    return _document(lang, t["by_" + report.by], report.period, report.policies, lines)


def _texts(lang: str) -> Texts:
    if lang not in TEXTS:
        raise RenderError(f"unknown language {lang!r}: use {' or '.join(LANGUAGES)}")
    return TEXTS[lang]


def _document(lang: str, title: str, period: Period, policies: Mapping[str, Any] | None, body: list[str]) -> str:
    """Title, period and policy lines, then `body`; Arabic wrapped right to left."""
    t = TEXTS[lang]
    lines = [f"# {title}", "", f"**{t['period']}:** {_period(period.to_json(), t)}", ""]
    if policies:
        lines += [f"**{t['policies']}:** {_policies(policies, t)}", ""]
    text = "\n".join([*lines, *body]).rstrip() + "\n"
    return f'<div dir="rtl" lang="ar">\n\n{text}\n</div>\n' if lang == "ar" else text


def _figure_table(t: Texts, rows: list[tuple[str, str]]) -> list[str]:
    return _table((t["figure"], t["value"]), rows)


def _call_rows(t: Texts, calls: CallFigures) -> list[tuple[str, str]]:
    return [
        (t["offered"], _n(calls.offered)),
        (t["answered"], _n(calls.answered)),
        (t["abandoned"], _n(calls.abandoned)),
        (t["within"].format(threshold=calls.threshold_seconds), _n(calls.answered_within_threshold)),
        (t["service_level"], _pct(calls.service_level, t)),
        (t["abandon_ratio"], _pct(calls.abandon_ratio, t)),
        (t["asa"], _secs(calls.average_speed_of_answer_seconds, t)),
        (t["aht"], _secs(calls.average_handle_seconds, t)),
        (t["surveys"], _n(calls.surveys)),
        (t["satisfaction"], _pct(calls.satisfaction, t)),
    ]


def _ticket_rows(t: Texts, tickets: TicketFigures) -> list[tuple[str, str]]:
    return [
        (t["opened"], _n(tickets.opened)),
        (t["resolved"], _n(tickets.resolved)),
        (t["first_response"], _targets(tickets.first_response, t)),
        (t["resolution"], _targets(tickets.resolution, t)),
        (t["surveys"], _n(tickets.surveys)),
        (t["satisfaction"], _pct(tickets.satisfaction, t)),
    ]


def _walk_in_rows(t: Texts, walk_in: WalkInFigures) -> list[tuple[str, str]]:
    return [
        (t["visits"], _n(walk_in.visits)),
        (t["called"], _n(walk_in.called)),
        (t["completed"], _n(walk_in.completed)),
        (t["no_show"], _n(walk_in.no_show)),
        (t["wait"], _secs(walk_in.average_wait_seconds, t)),
        (t["surveys"], _n(walk_in.surveys)),
        (t["satisfaction"], _pct(walk_in.satisfaction, t)),
    ]


def _headlines(t: Texts, calls: CallFigures, tickets: TicketFigures, walk_in: WalkInFigures) -> list[str]:
    rows = [
        (
            t["calls_line"],
            t["calls_volume"].format(answered=_n(calls.answered), offered=_n(calls.offered)),
            _pct(calls.satisfaction, t),
            f"{t['service_level']}: {_pct(calls.service_level, t)}",
        ),
        (
            t["tickets_line"],
            t["tickets_volume"].format(opened=_n(tickets.opened), resolved=_n(tickets.resolved)),
            _pct(tickets.satisfaction, t),
            _pct(tickets.resolution.compliance, t),
        ),
        (
            t["visits_line"],
            t["visits_volume"].format(visits=_n(walk_in.visits), completed=_n(walk_in.completed)),
            _pct(walk_in.satisfaction, t),
            f"{t['wait']}: {_secs(walk_in.average_wait_seconds, t)}",
        ),
    ]
    header = (t["channel_col"], t["volume"], t["satisfaction"], t["within_deadline"])
    return [f"## {t['headlines']}", "", *_table(header, rows), ""]


def _groups(groups: Mapping[str, TicketGroup], t: Texts, names: Mapping[str, str], first: str) -> list[str]:
    header = (first, t["opened"], t["resolved"], t["first_response"], t["resolution"], t["satisfaction"])
    ordered = sorted(groups.items(), key=lambda item: (-item[1].opened, item[0]))
    rows = [
        (
            names.get(key, key),
            _n(g.opened),
            _n(g.resolved),
            _pct(g.first_response.compliance, t),
            _pct(g.resolution.compliance, t),
            _pct(g.satisfaction, t),
        )
        for key, g in ordered
    ]
    return _table(header, rows)


def _breaches(rows: tuple[CategoryBreaches, ...], t: Texts) -> list[str]:
    if not rows:
        return [t["no_breaches"]]
    header = (t["category"], t["opened"], t["breached"], t["fr_breached"], t["res_breached"], t["resolution"])
    return _table(
        header,
        [
            (
                f"`{r.category}`",
                _n(r.opened),
                _n(r.breached),
                _n(r.first_response_breached),
                _n(r.resolution_breached),
                _pct(r.resolution_compliance, t),
            )
            for r in rows
        ],
    )


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return out


def _targets(target: TargetFigures, t: Texts) -> str:
    counts = t["met_breached"].format(met=_n(target.met), breached=_n(target.breached))
    return f"{_pct(target.compliance, t)} ({counts})"


def _n(value: int) -> str:
    return f"{int(value):,}"


def _pct(value: float | None, t: Texts) -> str:
    return t["none"] if value is None else f"{value * 100:.1f}%"


def _secs(value: float | None, t: Texts) -> str:
    return str(t["none"] if value is None else t["seconds"].format(value=f"{value:,.1f}"))


def _period(period: Mapping[str, str], t: Texts) -> str:
    start = datetime.fromisoformat(period["from"]).astimezone(REPORT_OFFSET)
    end = datetime.fromisoformat(period["to"]).astimezone(REPORT_OFFSET)
    midnight = start.time() == end.time() == datetime.min.time()
    if midnight:
        last = end - timedelta(days=1)
        text = _day(start, t) if last.date() == start.date() else f"{_day(start, t)} {t['to']} {_day(last, t)}"
    else:
        text = f"{_day(start, t)} {start:%H:%M} {t['until']} {_day(end, t)} {end:%H:%M}"
    return f"{text} ({t['zone']})"


def _policies(policies: Mapping[str, Any], t: Texts) -> str:
    """Which policy book(s) the SLA figures come from; a what-if says so in bold."""

    def short(sha: str | None) -> str:
        return f"`{(sha or '')[:12]}`"

    if policies.get("source") == "what-if":
        return str(t["what_if"].format(name=f"`{policies['name']}`", sha=short(policies["sha256"])))
    if policies.get("source") == "file":
        return str(t["file_book"].format(name=f"`{policies['name']}`", sha=short(policies["sha256"])))
    books = policies.get("books") or []
    if policies.get("mixed"):
        listed = "; ".join(
            t["book_tickets"].format(name=f"`{b['name']}`", sha=short(b["sha256"]), tickets=b["tickets"]) for b in books
        )
        return str(t["stored_books"].format(count=len(books), books=listed))
    return str(t["stored_book"].format(name=f"`{policies['name']}`", sha=short(policies["sha256"])))


def _day(value: datetime, t: Texts) -> str:
    return f"{value.day} {t['months'][value.month - 1]} {value.year}"
