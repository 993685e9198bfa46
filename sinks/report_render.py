"""The period report as Markdown, in English or Arabic (right to left), from its JSON form.

The layout follows the department's half-year report: headline figures per channel, customer
satisfaction, the share of tickets handled within their deadline, then the details per
channel, per kind and the categories with breaches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from tawasul.domain.period import REPORT_OFFSET

__all__ = ["LANGUAGES", "RenderError", "render_by_markdown", "render_markdown"]

LANGUAGES = ("en", "ar")


class RenderError(ValueError):
    """The report cannot be rendered (unknown language)."""


_EN = MappingProxyType(
    {
        "title": "Customer service report",
        "period": "Period",
        "zone": "Asia/Dubai time",
        "to": "to",
        "until": "until (exclusive)",
        "headlines": "Headlines",
        "channel_col": "Channel",
        "volume": "Volume",
        "satisfaction": "Satisfaction",
        "within_deadline": "Against target",
        "calls_line": "Calls",
        "calls_volume": "{answered} answered of {offered} offered",
        "tickets_line": "Service requests, complaints and reports",
        "tickets_volume": "{opened} opened, {resolved} resolved",
        "visits_line": "Walk-in visits",
        "visits_volume": "{visits} visits, {completed} served",
        "calls": "Contact centre",
        "figure": "Figure",
        "value": "Value",
        "offered": "Calls offered",
        "answered": "Calls answered",
        "abandoned": "Calls abandoned",
        "within": "Answered within {threshold} seconds",
        "service_level": "Service level",
        "abandon_ratio": "Abandoned share",
        "asa": "Average speed of answer",
        "aht": "Average handle time",
        "surveys": "Survey answers",
        "satisfied": "Satisfied answers",
        "tickets": "Tickets",
        "opened": "Opened",
        "resolved": "Resolved",
        "first_response": "First response within deadline",
        "resolution": "Resolution within deadline",
        "met_breached": "{met} met, {breached} breached",
        "by_channel": "By channel",
        "by_kind": "By kind",
        "kind_col": "Kind",
        "breaches": "Deadline breaches by category",
        "category": "Category",
        "breached": "Breaches",
        "fr_breached": "First response",
        "res_breached": "Resolution",
        "no_breaches": "No deadline was breached.",
        "walk_in": "Service centres",
        "visits": "Visits",
        "called": "Called to a counter",
        "completed": "Served",
        "no_show": "No-shows",
        "wait": "Average wait",
        "unmatched": "Survey answers about unknown calls, tickets or visits: {count}.",
        "seconds": "{value} s",
        "none": "n/a",
        "policies": "SLA policies",
        "stored_book": "the book the data was processed with, {name} (SHA-256 {sha})",
        "stored_books": "this period was processed with {count} policy books: {books}",
        "book_tickets": "{name} (SHA-256 {sha}, {tickets} tickets)",
        "what_if": (
            "**what-if**: recomputed with {name} (SHA-256 {sha}), not with the book(s) the data was processed with"
        ),
        "file_book": "{name} (SHA-256 {sha}); the database records no policy book",
        "by_agent": "Customer service report per agent",
        "by_team": "Customer service report per team",
        "agent": "Agent",
        "team": "Team",
        "nobody": "(unassigned)",
        "calls_answered": "Calls answered",
        "tickets_assigned": "Tickets assigned",
        "responses": "Survey answers",
        "no_groups": "Nothing in this period.",
        "by_note": "Tickets count for their latest assignee before the end of the period; calls for the agent who "
        "answered them (a call's team is its queue).",
        "months": (
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ),
    }
)

_AR = MappingProxyType(
    {
        "title": "تقرير خدمة المتعاملين",
        "period": "الفترة",
        "zone": "بتوقيت دبي",
        "to": "إلى",
        "until": "حتى (غير شامل)",
        "headlines": "أبرز المؤشرات",
        "channel_col": "القناة",
        "volume": "الحجم",
        "satisfaction": "نسبة الرضا",
        "within_deadline": "مقارنة بالمستهدف",
        "calls_line": "المكالمات",
        "calls_volume": "تم الرد على {answered} من أصل {offered} مكالمة",
        "tickets_line": "طلبات الخدمة والشكاوى والبلاغات",
        "tickets_volume": "{opened} طلبًا مفتوحًا، أُنجز منها {resolved}",
        "visits_line": "زيارات مراكز الخدمة",
        "visits_volume": "{visits} زيارة، خُدم منها {completed}",
        "calls": "مركز الاتصال",
        "figure": "المؤشر",
        "value": "القيمة",
        "offered": "المكالمات الواردة",
        "answered": "المكالمات التي تم الرد عليها",
        "abandoned": "المكالمات المتروكة",
        "within": "الرد خلال {threshold} ثانية",
        "service_level": "مستوى الخدمة",
        "abandon_ratio": "نسبة المكالمات المتروكة",
        "asa": "متوسط سرعة الرد",
        "aht": "متوسط مدة المعالجة",
        "surveys": "ردود الاستبيانات",
        "satisfied": "الردود الراضية",
        "tickets": "الطلبات",
        "opened": "المفتوحة",
        "resolved": "المنجزة",
        "first_response": "الرد الأول ضمن المدة",
        "resolution": "الإنجاز ضمن المدة",
        "met_breached": "{met} ضمن المدة، {breached} متجاوزة",
        "by_channel": "حسب القناة",
        "by_kind": "حسب النوع",
        "kind_col": "النوع",
        "breaches": "تجاوز المدد حسب الفئة",
        "category": "الفئة",
        "breached": "حالات التجاوز",
        "fr_breached": "الرد الأول",
        "res_breached": "الإنجاز",
        "no_breaches": "لم تُتجاوز أي مدة.",
        "walk_in": "مراكز الخدمة",
        "visits": "الزيارات",
        "called": "المنادى عليهم إلى النافذة",
        "completed": "تمت خدمتهم",
        "no_show": "لم يحضروا",
        "wait": "متوسط مدة الانتظار",
        "unmatched": "ردود استبيانات عن مكالمات أو طلبات أو زيارات غير معروفة: {count}.",
        "seconds": "{value} ثانية",
        "none": "غير متاح",
        "policies": "سياسات مستوى الخدمة",
        "stored_book": "السياسات التي عولجت بها البيانات، {name} (SHA-256 {sha})",
        "stored_books": "عولجت هذه الفترة بعدد {count} من كتب السياسات: {books}",
        "book_tickets": "{name} (SHA-256 {sha}، {tickets} طلبًا)",
        "what_if": "**افتراضي (ماذا لو)**: أعيد الحساب بـ {name} (SHA-256 {sha})، لا بالسياسات التي عولجت بها البيانات",
        "file_book": "{name} (SHA-256 {sha})؛ لا تسجل قاعدة البيانات أي كتاب سياسات",
        "by_agent": "تقرير خدمة المتعاملين حسب الموظف",
        "by_team": "تقرير خدمة المتعاملين حسب الفريق",
        "agent": "الموظف",
        "team": "الفريق",
        "nobody": "(غير مسند)",
        "calls_answered": "المكالمات التي تم الرد عليها",
        "tickets_assigned": "الطلبات المسندة",
        "responses": "ردود الاستبيانات",
        "no_groups": "لا توجد بيانات في هذه الفترة.",
        "by_note": "تُحتسب الطلبات لآخر من أُسندت إليه قبل نهاية الفترة، والمكالمات للموظف الذي رد عليها "
        "(فريق المكالمة هو طابورها).",
        "months": (
            "يناير",
            "فبراير",
            "مارس",
            "أبريل",
            "مايو",
            "يونيو",
            "يوليو",
            "أغسطس",
            "سبتمبر",
            "أكتوبر",
            "نوفمبر",
            "ديسمبر",
        ),
    }
)

_NAMES = MappingProxyType(
    {
        "en": MappingProxyType(
            {
                "call": "Contact centre",
                "crm": "CRM",
                "complaints_platform": "Complaints platform",
                "walk_in": "Service centres",
                "email": "Email",
                "web": "Website",
                "app": "Smart app",
                "social": "Social media",
                "request": "Service requests",
                "complaint": "Complaints",
                "suggestion": "Suggestions",
                "inquiry": "Inquiries",
                "compliment": "Compliments",
                "facility_report": "Facility reports (mosques)",
            }
        ),
        "ar": MappingProxyType(
            {
                "call": "مركز الاتصال",
                "crm": "نظام إدارة علاقات المتعاملين",
                "complaints_platform": "منصة الشكاوى",
                "walk_in": "مراكز الخدمة",
                "email": "البريد الإلكتروني",
                "web": "الموقع الإلكتروني",
                "app": "التطبيق الذكي",
                "social": "وسائل التواصل الاجتماعي",
                "request": "طلبات الخدمة",
                "complaint": "الشكاوى",
                "suggestion": "الاقتراحات",
                "inquiry": "الاستفسارات",
                "compliment": "الإشادات",
                "facility_report": "بلاغات المرافق (المساجد)",
            }
        ),
    }
)
_TEXTS: Mapping[str, Mapping[str, Any]] = MappingProxyType({"en": _EN, "ar": _AR})


def render_markdown(report: Mapping[str, Any], lang: str = "en") -> str:
    """The report (as `build_report` returns it, or its JSON) as a Markdown document."""
    if lang not in _TEXTS:
        raise RenderError(f"unknown language {lang!r}: use {' or '.join(LANGUAGES)}")
    t, names = _TEXTS[lang], _NAMES[lang]
    calls, tickets, walk_in = report["calls"], report["tickets"], report["walk_in"]
    lines = [f"# {t['title']}", "", f"**{t['period']}:** {_period(report['period'], t)}", ""]
    if report.get("policies"):
        lines += [f"**{t['policies']}:** {_policies(report['policies'], t)}", ""]
    lines += _headlines(t, calls, tickets, walk_in)
    lines += [
        f"## {t['calls']}",
        "",
        *_table(
            (t["figure"], t["value"]),
            [
                (t["offered"], _n(calls["offered"])),
                (t["answered"], _n(calls["answered"])),
                (t["abandoned"], _n(calls["abandoned"])),
                (t["within"].format(threshold=calls["threshold_seconds"]), _n(calls["answered_within_threshold"])),
                (t["service_level"], _pct(calls["service_level"], t)),
                (t["abandon_ratio"], _pct(calls.get("abandon_ratio"), t)),
                (t["asa"], _secs(calls["average_speed_of_answer_seconds"], t)),
                (t["aht"], _secs(calls["average_handle_seconds"], t)),
                (t["surveys"], _n(calls["surveys"])),
                (t["satisfaction"], _pct(calls["satisfaction"], t)),
            ],
        ),
        "",
    ]
    lines += [
        f"## {t['tickets']}",
        "",
        *_table(
            (t["figure"], t["value"]),
            [
                (t["opened"], _n(tickets["opened"])),
                (t["resolved"], _n(tickets["resolved"])),
                (t["first_response"], _targets(tickets["first_response"], t)),
                (t["resolution"], _targets(tickets["resolution"], t)),
                (t["surveys"], _n(tickets["surveys"])),
                (t["satisfaction"], _pct(tickets["satisfaction"], t)),
            ],
        ),
        "",
    ]
    for key, column in (("by_channel", "channel_col"), ("by_kind", "kind_col")):
        lines += [f"### {t[key]}", "", *_groups(tickets[key], t, names, t[column]), ""]
    lines += [f"### {t['breaches']}", "", *_breaches(tickets.get("breaches_by_category", []), t), ""]
    lines += [
        f"## {t['walk_in']}",
        "",
        *_table(
            (t["figure"], t["value"]),
            [
                (t["visits"], _n(walk_in["visits"])),
                (t["called"], _n(walk_in.get("called", 0))),
                (t["completed"], _n(walk_in["completed"])),
                (t["no_show"], _n(walk_in["no_show"])),
                (t["wait"], _secs(walk_in["average_wait_seconds"], t)),
                (t["surveys"], _n(walk_in["surveys"])),
                (t["satisfaction"], _pct(walk_in["satisfaction"], t)),
            ],
        ),
        "",
    ]
    if report.get("unmatched_surveys"):
        lines += [t["unmatched"].format(count=_n(report["unmatched_surveys"])), ""]
    body = "\n".join(lines).rstrip() + "\n"
    return f'<div dir="rtl" lang="ar">\n\n{body}\n</div>\n' if lang == "ar" else body


def render_by_markdown(report: Mapping[str, Any], lang: str = "en") -> str:
    """The report per agent or team (`report_by.build_report_by`, or its JSON) as Markdown."""
    if lang not in _TEXTS:
        raise RenderError(f"unknown language {lang!r}: use {' or '.join(LANGUAGES)}")
    t = _TEXTS[lang]
    by = report["by"]
    lines = [f"# {t['by_' + by]}", "", f"**{t['period']}:** {_period(report['period'], t)}", ""]
    if report.get("policies"):
        lines += [f"**{t['policies']}:** {_policies(report['policies'], t)}", ""]
    header = (
        t[by],
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
            t["nobody"] if g[by] is None else f"`{g[by]}`",
            _n(g["calls_answered"]),
            _secs(g["average_handle_seconds"], t),
            _n(g["tickets_assigned"]),
            _targets(g["first_response"], t),
            _targets(g["resolution"], t),
            _n(g["surveys"]),
            _pct(g["satisfaction"], t),
        )
        for g in report["groups"]
    ]
    lines += [*_table(header, rows), ""] if rows else [t["no_groups"], ""]
    lines += [t["by_note"], ""]
    body = "\n".join(lines).rstrip() + "\n"
    return f'<div dir="rtl" lang="ar">\n\n{body}\n</div>\n' if lang == "ar" else body


def _headlines(
    t: Mapping[str, Any], calls: Mapping[str, Any], tickets: Mapping[str, Any], walk_in: Mapping[str, Any]
) -> list[str]:
    rows = [
        (
            t["calls_line"],
            t["calls_volume"].format(answered=_n(calls["answered"]), offered=_n(calls["offered"])),
            _pct(calls["satisfaction"], t),
            f"{t['service_level']}: {_pct(calls['service_level'], t)}",
        ),
        (
            t["tickets_line"],
            t["tickets_volume"].format(opened=_n(tickets["opened"]), resolved=_n(tickets["resolved"])),
            _pct(tickets["satisfaction"], t),
            _pct(tickets["resolution"]["compliance"], t),
        ),
        (
            t["visits_line"],
            t["visits_volume"].format(visits=_n(walk_in["visits"]), completed=_n(walk_in["completed"])),
            _pct(walk_in["satisfaction"], t),
            f"{t['wait']}: {_secs(walk_in['average_wait_seconds'], t)}",
        ),
    ]
    header = (t["channel_col"], t["volume"], t["satisfaction"], t["within_deadline"])
    return [f"## {t['headlines']}", "", *_table(header, rows), ""]


def _groups(
    groups: Mapping[str, Mapping[str, Any]], t: Mapping[str, Any], names: Mapping[str, str], first: str
) -> list[str]:
    header = (first, t["opened"], t["resolved"], t["first_response"], t["resolution"], t["satisfaction"])
    ordered = sorted(groups.items(), key=lambda item: (-int(item[1].get("opened", 0)), item[0]))
    rows = [
        (
            names.get(key, key),
            _n(g["opened"]),
            _n(g.get("resolved", 0)),
            _pct(g.get("first_response", {}).get("compliance"), t),
            _pct(g["resolution"]["compliance"], t),
            _pct(g["satisfaction"], t),
        )
        for key, g in ordered
    ]
    return _table(header, rows)


def _breaches(rows: list[Mapping[str, Any]], t: Mapping[str, Any]) -> list[str]:
    if not rows:
        return [t["no_breaches"]]
    header = (t["category"], t["opened"], t["breached"], t["fr_breached"], t["res_breached"], t["resolution"])
    return _table(
        header,
        [
            (
                f"`{r['category']}`",
                _n(r["opened"]),
                _n(r["breached"]),
                _n(r["first_response_breached"]),
                _n(r["resolution_breached"]),
                _pct(r["resolution_compliance"], t),
            )
            for r in rows
        ],
    )


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return out


def _targets(group: Mapping[str, Any], t: Mapping[str, Any]) -> str:
    counts = t["met_breached"].format(met=_n(group["met"]), breached=_n(group["breached"]))
    return f"{_pct(group['compliance'], t)} ({counts})"


def _n(value: int) -> str:
    return f"{int(value):,}"


def _pct(value: float | None, t: Mapping[str, Any]) -> str:
    return t["none"] if value is None else f"{value * 100:.1f}%"


def _secs(value: float | None, t: Mapping[str, Any]) -> str:
    return str(t["none"] if value is None else t["seconds"].format(value=f"{value:,.1f}"))


def _period(period: Mapping[str, str], t: Mapping[str, Any]) -> str:
    start = datetime.fromisoformat(period["from"]).astimezone(REPORT_OFFSET)
    end = datetime.fromisoformat(period["to"]).astimezone(REPORT_OFFSET)
    midnight = start.time() == end.time() == datetime.min.time()
    if midnight:
        last = end - timedelta(days=1)
        text = _day(start, t) if last.date() == start.date() else f"{_day(start, t)} {t['to']} {_day(last, t)}"
    else:
        text = f"{_day(start, t)} {start:%H:%M} {t['until']} {_day(end, t)} {end:%H:%M}"
    return f"{text} ({t['zone']})"


def _policies(policies: Mapping[str, Any], t: Mapping[str, Any]) -> str:
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


def _day(value: datetime, t: Mapping[str, Any]) -> str:
    return f"{value.day} {t['months'][value.month - 1]} {value.year}"
