/* Tawasul wall display: polls /api/wallboard and renders it; shows a warning when data goes stale. */
"use strict";
(function () {
  const LABELS = window.TAWASUL_LABELS || {};
  const ZONE = "Asia/Dubai";
  const state = { refreshSeconds: 5, lastOk: 0, board: null, timer: null };

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null) continue;
      if (key === "text") node.textContent = value;
      else if (key === "className") node.className = value;
      else if (key === "style") Object.assign(node.style, value); // CSSOM: allowed by the page's CSP
      else node.setAttribute(key, value);
    }
    for (const child of children || []) node.appendChild(child);
    return node;
  }

  function bilingual(kind, id) {
    const pair = (LABELS[kind] || {})[id];
    if (!pair) return el("span", { text: id, className: "id" });
    return el("span", { className: "pair" }, [
      el("span", { lang: "en", text: pair[0] }),
      el("span", { lang: "ar", dir: "rtl", text: pair[1] }),
    ]);
  }

  const percent = (v) => (v === null || v === undefined ? "—" : (v * 100).toFixed(1) + "\u00a0%");
  // a no-break space keeps "98.5 %" on one line
  const count = (v) => (v === null || v === undefined ? "—" : Number(v).toLocaleString("en-US"));

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    const s = Math.round(seconds);
    const nb = "\u00a0";
    if (s < 60) return s + nb + "s";
    const m = Math.floor(s / 60);
    if (m < 60) return m + nb + "m " + String(s % 60).padStart(2, "0") + nb + "s";
    const h = Math.floor(m / 60);
    if (h < 48) return h + nb + "h " + String(m % 60).padStart(2, "0") + nb + "m";
    return Math.floor(h / 24) + nb + "d " + (h % 24) + nb + "h";
  }

  // a left-to-right island inside Arabic text, so "1 h 00 m" keeps its order
  const isolate = (text) => "\u2066" + text + "\u2069";

  function timeIn(zone, date, locale) {
    return new Intl.DateTimeFormat(locale || "en-GB", {
      timeZone: zone, hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
    }).format(date);
  }

  function setFigure(id, text, status) {
    const node = $(id);
    node.textContent = text;
    node.className = node.className.replace(/\b(on_target|at_risk|breached|none)\b/g, "").trim();
    if (status) node.classList.add(status);
  }

  function cell(content, className) {
    const td = el("td", { className: className });
    if (typeof content === "string") td.textContent = content;
    else td.appendChild(content);
    return td;
  }

  function fill(tbody, rows) {
    tbody.replaceChildren(...rows);
  }

  function renderCalls(calls, windowName) {
    setFigure("calls-offered", count(calls.offered_today));
    setFigure("calls-answered", count(calls.answered_today));
    setFigure("calls-abandoned", count(calls.abandoned_today));
    setFigure("calls-service-level", percent(calls.service_level), calls.service_level_status);
    setFigure("calls-asa", duration(calls.asa_seconds), calls.asa_status);
    setFigure("calls-abandon-ratio", percent(calls.abandon_ratio), calls.abandon_status);
    $("kpi-window").textContent = windowName;
    fill($("queues-body"), calls.queues.map((q) => el("tr", { "data-queue": q.queue }, [
      cell(bilingual("queue", q.queue)),
      cell(count(q.waiting), "num " + q.wait_status),
      cell(duration(q.longest_wait_seconds), "num " + q.wait_status),
      cell(percent(q.service_level), "num " + q.service_level_status),
      cell(duration(q.asa_seconds), "num " + q.asa_status),
    ])));
  }

  function renderSatisfaction(items) {
    fill($("satisfaction-list"), items.map((item) => {
      const width = item.ratio === null ? 0 : Math.max(0, Math.min(100, item.ratio * 100));
      const bar = el("div", { className: "bar" }, [el("div", { className: "fill " + item.status, style: { width: width + "%" } })]);
      if (item.target !== null) {
        bar.appendChild(el("div", { className: "target-mark", style: { left: item.target * 100 + "%" }, title: "target" }));
      }
      return el("li", { "data-channel": item.channel, className: item.status }, [
        el("div", { className: "bar-head" }, [
          bilingual("channel", item.channel),
          el("span", { className: "ratio " + item.status, "data-channel": item.channel, text: percent(item.ratio) }),
        ]),
        bar,
        el("div", { className: "bar-foot" }, [
          el("span", { text: item.target === null ? "" : "target · المستهدف " + percent(item.target) }),
          el("span", { text: item.responses === null ? "" : count(item.responses) + " responses · إجابة" }),
        ]),
      ]);
    }));
  }

  function renderTickets(tickets) {
    for (const key of ["on_track", "at_risk", "breached", "no_sla"]) setFigure("tickets-" + key, count(tickets[key]));
    fill($("tickets-by-channel"), tickets.by_channel.map((c) => el("tr", { "data-channel": c.channel }, [
      cell(bilingual("channel", c.channel)),
      cell(count(c.on_track), "num on_target-text"),
      cell(count(c.at_risk), "num at_risk-text"),
      cell(count(c.breached), "num breached-text"),
    ])));
    fill($("breaches-body"), tickets.breaches.map((b) => el("tr", { className: b.still_open ? "open" : "closed" }, [
      cell(b.ticket_id, "ticket-id"),
      cell(b.category, "category"),
      cell(bilingual("channel", b.channel)),
      cell(bilingual("target", b.target)),
      cell(duration(b.late_seconds), "num late breached-text"),
    ])));
    $("breaches-empty").hidden = tickets.breaches.length > 0;
  }

  function renderWalkIn(centres) {
    fill($("walkin-body"), centres.map((c) => el("tr", { "data-centre": c.centre }, [
      cell(bilingual("centre", c.centre)),
      cell(count(c.waiting), "num " + c.wait_status),
      cell(duration(c.longest_wait_seconds), "num " + c.wait_status),
      cell(count(c.completed_today), "num"),
    ])));
  }

  function showStale(en, ar) {
    const banner = $("stale");
    banner.hidden = !en;
    $("stale-en").textContent = en || "";
    $("stale-ar").textContent = ar || "";
    document.body.classList.toggle("is-stale", Boolean(en));
  }

  function render(board) {
    state.board = board;
    state.refreshSeconds = board.refresh_seconds || state.refreshSeconds;
    renderCalls(board.calls, board.window);
    renderSatisfaction(board.satisfaction);
    renderTickets(board.tickets);
    renderWalkIn(board.walk_in);
    $("data-as-of").textContent = board.data_as_of ? timeIn(ZONE, new Date(board.data_as_of)) : "—";
    $("refreshed-at").textContent = timeIn(ZONE, new Date(board.generated_at));
    if (board.stale) {
      const age = board.data_as_of ? duration((Date.parse(board.generated_at) - Date.parse(board.data_as_of)) / 1000) : null;
      showStale(
        "Data is not updating" + (age ? " — newest data is " + age + " old" : " — no data yet"),
        "البيانات لا تتحدث" + (age ? " — آخر بيانات منذ " + isolate(age) : " — لا توجد بيانات بعد"));
    } else {
      showStale(null, null);
    }
  }

  async function poll() {
    try {
      const response = await fetch("/api/wallboard", { cache: "no-store" });
      if (!response.ok) throw new Error("HTTP " + response.status);
      render(await response.json());
      state.lastOk = Date.now();
    } catch (error) {
      showStale("Connection to the data source lost — showing the last figures",
        "انقطع الاتصال بمصدر البيانات — تُعرض آخر الأرقام");
    } finally {
      state.timer = setTimeout(poll, state.refreshSeconds * 1000);
    }
  }

  function tick() {
    const now = new Date();
    $("clock-time").textContent = timeIn(ZONE, now);
    $("clock-date").textContent = new Intl.DateTimeFormat("en-GB", {
      timeZone: ZONE, weekday: "long", day: "numeric", month: "long", year: "numeric",
    }).format(now);
    $("clock-date-ar").textContent = new Intl.DateTimeFormat("ar-AE-u-ca-islamic-umalqura-nu-latn", {
      timeZone: ZONE, weekday: "long", day: "numeric", month: "long", year: "numeric",
    }).format(now);
    if (state.lastOk && Date.now() - state.lastOk > state.refreshSeconds * 3000) {
      showStale("Connection to the data source lost — showing the last figures",
        "انقطع الاتصال بمصدر البيانات — تُعرض آخر الأرقام");
    }
  }

  tick();
  setInterval(tick, 1000);
  poll();
})();
