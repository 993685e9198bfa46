"""`/tickets/<id>` on the wall display server: a ticket's SLA story as a plain HTML page.

The page is rendered on the server (it works without JavaScript) from the same story as
`tawasul ticket ID --format json` (`sinks.ticket_query`): bilingual by default, `?lang=en`
English only, `?lang=ar` Arabic, right to left. `?at=` (ISO 8601) tells the story as of another
instant than the server's clock. States are written as words with a symbol, never by colour alone.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from aiohttp import web
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from sinks.ticket_query import TicketNotFound, TicketQueryError, choose_book, load_ticket, story_json, tell
from tawasul.domain.errors import PolicyError
from tawasul.domain.period import PeriodError, parse_instant
from tawasul.infra.settings import Settings

__all__ = ["handle", "render_page"]

log = logging.getLogger(__name__)

LANGS = ("both", "en", "ar")
LABELS: Mapping[str, tuple[str, str]] = {
    "title": ("SLA story of ticket", "مسار مستوى الخدمة للطلب"),
    "as_of": ("As of", "حتى"),
    "opened_as": ("Opened as", "فُتح بصفة"),
    "book": ("Policy book", "كتاب السياسات"),
    "events": ("Events, in the order the engine applies them", "الأحداث بالترتيب الذي يطبقه المحرك"),
    "time": ("Time", "الوقت"),
    "event": ("Event", "الحدث"),
    "details": ("Details", "التفاصيل"),
    "note": ("Note", "ملاحظة"),
    "first_response": ("First response", "الرد الأول"),
    "resolution": ("Resolution", "الإنجاز"),
    "policy": ("Policy", "السياسة"),
    "rule": ("Chosen by", "اختيرت بموجب"),
    "passed_over": ("Passed over", "سياسات سابقة لم تنطبق"),
    "calendar": ("Calendar", "التقويم"),
    "limit": ("Target", "المستهدف"),
    "warn_at": ("Warning at", "التنبيه عند"),
    "counted": ("Business time counted", "وقت العمل المحتسب"),
    "segment": ("Clock running", "تشغيل العداد"),
    "interval": ("Working interval", "فترة العمل"),
    "business": ("Business time", "وقت العمل"),
    "skipped": ("Skipped", "أيام مستثناة"),
    "ramadan": ("Ramadan hours on", "ساعات رمضان في"),
    "pauses": ("Pauses", "فترات الإيقاف"),
    "not_counted": ("working time not counted", "وقت عمل غير محتسب"),
    "deadline": ("Deadline", "الموعد النهائي"),
    "how": ("How it was computed", "طريقة الحساب"),
    "from": ("from", "ابتداءً من"),
    "before": ("counted before", "محتسب قبلها"),
    "no_deadline": ("none while the clock is paused", "لا يوجد أثناء الإيقاف"),
    "warning": ("Warning instant", "وقت التنبيه"),
    "exceeded": ("Limit exceeded from", "تجاوز الحد ابتداءً من"),
    "outcomes": ("Outcomes: computed now beside stored by the pipeline", "النتائج: المحسوبة الآن مقابل المخزنة"),
    "type": ("Outcome", "النتيجة"),
    "target": ("Target", "المؤشر"),
    "at": ("At", "في"),
    "verdict": ("Computed vs stored", "المحسوب مقابل المخزن"),
    "none": ("none", "لا يوجد"),
    "no_policy": ("No policy (no SLA)", "لا توجد سياسة"),
    "still_running": ("still running", "ما زال يعمل"),
    "holiday": ("holiday", "عطلة رسمية"),
    "weekend": ("weekend", "عطلة نهاية الأسبوع"),
    "closed": ("closed", "إغلاق"),
    "paused": ("paused", "موقوف"),
    "met": ("met", "ضمن المدة"),
    "breached": ("breached", "متجاوز"),
    "running": ("running", "قيد التشغيل"),
    "agree": ("agree", "متطابق"),
    "differ": ("differ", "مختلف"),
    "computed only": ("computed only", "محسوب فقط"),
    "stored only": ("stored only", "مخزن فقط"),
    "stored": ("stored", "مخزن"),
    "what-if": ("what-if", "افتراضي"),
    "file": ("policy file", "ملف السياسات"),
    "not_found": ("No stored event of this ticket.", "لا توجد أحداث مخزنة لهذا الطلب."),
    "unavailable": ("The database cannot be read.", "تعذرت قراءة قاعدة البيانات."),
    "priority": ("priority", "الأولوية"),
    "stored_state": ("Stored by the pipeline", "المخزن من خط المعالجة"),
    "ignored: after ticket.closed": ("ignored: after ticket.closed", "مُهمل: بعد إغلاق الطلب"),
    "counted at the opening (timed before it)": (
        "counted at the opening (timed before it)",
        "احتُسب عند الفتح (توقيته قبله)",
    ),
    "after the as-of instant": ("after the as-of instant", "بعد لحظة العرض"),
    "waiting for ticket.opened": ("waiting for ticket.opened", "بانتظار فتح الطلب"),
}
SYMBOLS = {
    "met": "✓",
    "breached": "✗",
    "running": "▶",
    "paused": "⏸",
    "agree": "=",
    "differ": "≠",
    "computed only": "◐",
    "stored only": "◑",
}
WEEKDAYS_AR = ("الاثنين", "الثلاثاء", "الأربعاء", "الخميس", "الجمعة", "السبت", "الأحد")


class _Page:
    """Labels and formatting in one of the page's languages."""

    def __init__(self, lang: str) -> None:
        self.lang = lang

    def t(self, key: str) -> str:
        """A label: English, Arabic, or English with its Arabic beside it."""
        en, ar = LABELS.get(key, (key, key))
        if self.lang == "en":
            return html.escape(en)
        if self.lang == "ar":
            return html.escape(ar)
        return f'{html.escape(en)} <span class="ar" lang="ar" dir="rtl">{html.escape(ar)}</span>'

    def when(self, text: str | None) -> str:
        if text is None:
            return "-"
        value = datetime.fromisoformat(text)
        day = WEEKDAYS_AR[value.weekday()] if self.lang == "ar" else f"{value:%a}"
        seconds = f":{value:%S}" if value.second or value.microsecond else ""
        return f'<time datetime="{html.escape(text)}">{day} {value:%Y-%m-%d %H:%M}{seconds}</time>'

    def day(self, text: str) -> str:
        value = date.fromisoformat(text)
        name = WEEKDAYS_AR[value.weekday()] if self.lang == "ar" else f"{value:%a}"
        return f"{name} {value:%Y-%m-%d}"

    def state(self, key: str) -> str:
        css = html.escape(key.replace(" ", "-"))
        return f'<span class="state state-{css}">{SYMBOLS.get(key, "")} {self.t(key)}</span>'


def _e(value: object) -> str:
    return html.escape(str(value))


def _breakdown(p: _Page, b: Mapping[str, Any]) -> str:
    """The counted working intervals and the skipped days, in date order, and the total."""
    dated = [
        (
            i["from"][:10],
            f"<tr><td>{p.when(i['from'])} – {p.when(i['to'])}</td><td class=num>{_e(i['business'])}</td></tr>",
        )
        for i in b["intervals"]
    ]
    dated += [
        (
            d["date"],
            f"<tr class=skipped><td>{p.day(d['date'])}: {p.t(d['reason'])}"
            f"{' - ' + _e(d['name']) if d['name'] else ''}</td><td class=num>{p.t('skipped')}</td></tr>",
        )
        for d in b["skipped_days"]
    ]
    rows = (
        "".join(row for _, row in sorted(dated, key=lambda item: item[0]))
        or f"<tr><td colspan=2>{p.t('none')}</td></tr>"
    )
    parts = [
        f"<table class=spans><thead><tr><th>{p.t('interval')}</th><th>{p.t('business')}</th></tr></thead>"
        f"<tbody>{rows}</tbody><tfoot><tr><th>{p.t('counted')}</th><td class=num>{_e(b['business'])}</td>"
        "</tr></tfoot></table>"
    ]
    if b["ramadan_days"]:
        parts.append(f"<p class=ramadan>{p.t('ramadan')}: {', '.join(p.day(d) for d in b['ramadan_days'])}</p>")
    return "".join(parts)


def _target(p: _Page, t: Mapping[str, Any], stored: Mapping[str, Any] | None) -> str:
    pol = t["policy"]
    match = ", ".join(f"<code>{_e(k)}={_e('|'.join(v))}</code>" for k, v in pol["match"].items()) or "<code>{}</code>"
    passed = ", ".join(f"{_e(x['policy'])} (<code>{_e(x['misfit'])}</code>)" for x in pol["passed_over"])
    out = [
        f'<section class=target id="target-{_e(t["target"])}"><h2>{p.t(t["target"])}: {p.state(t["status"])} '
        f"<span class=elapsed>{_e(t['elapsed'])} / {_e(pol['limit'])}</span></h2>",
        "<dl class=policy>",
        f"<dt>{p.t('policy')}</dt><dd><strong>{_e(pol['name'])}</strong> (<code>policies[{pol['position']}]</code>,"
        f" {p.t('priority')} <code>{_e(pol['priority'])}</code>)</dd>",
        f"<dt>{p.t('rule')}</dt><dd>{match}</dd>",
    ]
    if passed:
        out.append(f"<dt>{p.t('passed_over')}</dt><dd>{passed}</dd>")
    out += [
        f"<dt>{p.t('calendar')}</dt><dd><code>{_e(pol['calendar'])}</code></dd>",
        f"<dt>{p.t('limit')}</dt><dd>{_e(pol['limit'])}</dd>",
        f"<dt>{p.t('warn_at')}</dt><dd>{pol['warn_at']:.0%}</dd></dl>",
    ]
    for seg in t["segments"]:
        end = p.when(seg["to"]) if seg["to"] else p.t("still_running")
        out.append(f"<h3>{p.t('segment')}: {p.when(seg['from'])} – {end}</h3>{_breakdown(p, seg['counted'])}")
    if t["pauses"]:
        items = "".join(
            f"<li>{p.t(x['why'])}: {p.when(x['from'])} – {p.when(x['to']) if x['to'] else '…'}; "
            f"{_e(x['skipped_business'])} {p.t('not_counted')}</li>"
            for x in t["pauses"]
        )
        out.append(f"<h3>{p.t('pauses')}</h3><ul class=pauses>{items}</ul>")
    basis = t["deadline_basis"]
    if t["deadline"] is None:
        out.append(f"<p class=deadline>{p.t('deadline')}: {p.t('no_deadline')}</p>")
    else:
        out.append(
            f'<p class=deadline>{p.t("deadline")}: <strong class="deadline-value">{p.when(t["deadline"])}</strong></p>'
        )
    if basis is not None:
        out.append(
            f"<h3>{p.t('how')}</h3><p class=how>{_e(basis['remaining'])} = {_e(pol['limit'])} − "
            f"{_e(basis['counted_before'])} ({p.t('before')}), {p.t('from')} {p.when(basis['from'])}</p>"
            f"{_breakdown(p, basis['walk'])}"
        )
    out.append(
        f"<p>{p.t('warning')}: <span class=warning-value>{p.when(t['warning_at'])}</span>; "
        f"{p.t('exceeded')}: {p.when(t['breached_from'])}</p>"
    )
    if stored is not None:
        out.append(
            f"<p class=stored-target>{p.t('stored_state')}: {p.state(stored['state'])}, {p.t('deadline')} "
            f"{p.when(stored['deadline'])}</p>"
        )
    out.append("</section>")
    return "".join(out)


def render_page(story: Mapping[str, Any], lang: str = "both") -> str:
    """The story (as `sinks.ticket_query.story_json` gives it) as a complete HTML document."""
    p = _Page(lang)
    attrs = 'lang="ar" dir="rtl"' if lang == "ar" else 'lang="en" dir="ltr"'
    profile = story["profile"]
    books = story["policies"]
    head = [
        f"<h1>{p.t('title')} <bdi>{_e(story['ticket_id'])}</bdi></h1><dl class=summary>",
        f"<dt>{p.t('as_of')}</dt><dd>{p.when(story['as_of'])}</dd>",
    ]
    if profile:
        head.append(
            f"<dt>{p.t('opened_as')}</dt><dd>"
            + " / ".join(f"<code>{_e(v)}</code>" for v in profile.values() if v is not None)
            + "</dd>"
        )
    head.append(
        f"<dt>{p.t('book')}</dt><dd><code>{_e(books['name'])}</code> ({p.t(books['source'])}, SHA-256 "
        f"<code>{_e(books['sha256'][:12])}</code>…)</dd></dl>"
    )
    events = "".join(
        f"<tr><td>{p.when(e['time'])}</td><td><code>{_e(e['type'])}</code></td><td>"
        + " ".join(f"{_e(k)}=<code>{_e(v)}</code>" for k, v in e["details"].items())
        + f"</td><td>{p.t(e['note']) if e['note'] else ''}</td></tr>"
        for e in story["events"]
    )
    body = [
        *head,
        f"<section><h2>{p.t('events')}</h2><table class=events><thead><tr><th>{p.t('time')}</th>"
        f"<th>{p.t('event')}</th><th>{p.t('details')}</th><th>{p.t('note')}</th></tr></thead>"
        f"<tbody>{events}</tbody></table></section>",
    ]
    stored = {s["target"]: s for s in story["stored"]["targets"]}
    body += [_target(p, t, stored.get(t["target"])) for t in story["targets"]]
    if story["no_policy"]:
        body.append(f"<p>{p.t('no_policy')}: " + ", ".join(p.t(n) for n in story["no_policy"]) + "</p>")
    rows = (
        "".join(
            f"<tr><td><code>{_e((r['computed'] or r['stored'])['type'])}</code></td><td>"
            f"{p.t((r['computed'] or r['stored'])['target'])}</td>"
            f"<td>{p.when((r['computed'] or r['stored'])['at'])}</td>"
            f"<td>{p.when((r['computed'] or r['stored'])['deadline'])}</td><td>{p.state(r['verdict'])}</td></tr>"
            for r in story["outcome_comparison"]
        )
        or f"<tr><td colspan=5>{p.t('none')}</td></tr>"
    )
    body.append(
        f"<section><h2>{p.t('outcomes')}</h2><table class=outcomes><thead><tr><th>{p.t('type')}</th>"
        f"<th>{p.t('target')}</th><th>{p.t('at')}</th><th>{p.t('deadline')}</th><th>{p.t('verdict')}</th>"
        f"</tr></thead><tbody>{rows}</tbody></table></section>"
    )
    return (
        f"<!doctype html><html {attrs}><head><meta charset=utf-8><meta name=viewport "
        f'content="width=device-width, initial-scale=1"><title>{_e(story["ticket_id"])}</title>'
        '<link rel=stylesheet href="/static/ticket.css"></head><body><main>' + "".join(body) + "</main></body></html>"
    )


def _message(lang: str, key: str, status: int) -> web.Response:
    p = _Page(lang)
    attrs = 'lang="ar" dir="rtl"' if lang == "ar" else 'lang="en"'
    page = (
        f"<!doctype html><html {attrs}><head><meta charset=utf-8><title>{status}</title>"
        f'<link rel=stylesheet href="/static/ticket.css"></head><body><main><p>{p.t(key)}</p></main></body></html>'
    )
    return web.Response(text=page, status=status, content_type="text/html", headers={"Cache-Control": "no-store"})


def _story(engine: Engine, ticket_id: str, at: datetime) -> dict[str, Any]:
    records = load_ticket(engine, ticket_id)
    book, policies = choose_book(records, None, Settings.resolve().policies_path)
    return story_json(tell(records, book, at), records, policies)


async def handle(request: web.Request) -> web.Response:
    """GET /tickets/{ticket_id}[?lang=en|ar][&at=ISO 8601]."""
    from sinks.wallboard.app import CLOCK, ENGINE

    lang = request.query.get("lang", "both")
    if lang not in LANGS:
        lang = "both"
    try:
        at = parse_instant(request.query["at"], "at") if "at" in request.query else request.app[CLOCK]()
    except PeriodError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from exc
    ticket_id = request.match_info["ticket_id"]
    try:
        story = await asyncio.to_thread(_story, request.app[ENGINE], ticket_id, at)
    except TicketNotFound:
        return _message(lang, "not_found", 404)
    except (TicketQueryError, SQLAlchemyError, PolicyError) as exc:
        log.warning("ticket page unavailable", extra={"error": type(exc).__name__})
        return _message(lang, "unavailable", 503)
    return web.Response(text=render_page(story, lang), content_type="text/html", headers={"Cache-Control": "no-store"})
