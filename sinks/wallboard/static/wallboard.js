/* Tawasul wall display: listens to /api/wallboard/events (Server-Sent Events) and renders each board;
   reconnects by itself and says when the connection or the data is stale. */
"use strict";
(function () {
  const F = window.TAWASUL_FORMAT;
  const { el, words, label, count, percent, duration, stateNodes, stateWord } = F;
  const state = { keepaliveSeconds: 5, lastMessage: 0, connectedSince: 0, source: null, board: null,
                  retry: null, lostSince: Date.now() };
  const $ = (id) => document.getElementById(id);
  const STATUSES = ["on_target", "at_risk", "breached", "none"];
  const LOST = ["Connection to the data source lost — showing the last figures",
                "انقطع الاتصال بمصدر البيانات — تُعرض آخر الأرقام"];

  function setFigure(id, text, status) {
    const node = $(id);
    node.replaceChildren(...stateNodes(text, status));
    node.classList.remove(...STATUSES);
    if (status) {
      node.classList.add(status);
      node.title = stateWord(status);
    }
  }

  function cell(content, className, status) {
    const td = el("td", { className: [className, status].filter(Boolean).join(" ") });
    if (typeof content === "string") td.replaceChildren(...stateNodes(content, status));
    else td.appendChild(content);
    if (status) td.title = stateWord(status);
    return td;
  }

  /* Drop the last rows of a table while its card overflows; say how many are not shown. */
  function fitRows(tbody) {
    const table = tbody.closest("table");
    const card = tbody.closest(".card");
    const more = $(table.dataset.more);
    let hidden = 0;
    more.hidden = true;
    while (card.scrollHeight > card.clientHeight + 1 && tbody.rows.length > 0) {
      tbody.deleteRow(-1);
      hidden += 1;
      more.hidden = false;
      more.textContent = "+" + count(hidden) + " " + (F.MODE === "ar" ? "غير معروضة" : F.MODE === "en" ? "more" : "more · أخرى");
    }
  }

  function fill(tbody, rows) {
    tbody.replaceChildren(...rows);
    fitRows(tbody);
  }

  function renderCalls(calls) {
    setFigure("calls-offered", count(calls.offered_today));
    setFigure("calls-answered", count(calls.answered_today));
    setFigure("calls-abandoned", count(calls.abandoned_today));
    setFigure("calls-service-level", percent(calls.service_level), calls.service_level_status);
    setFigure("calls-asa", duration(calls.asa_seconds), calls.asa_status);
    setFigure("calls-abandon-ratio", percent(calls.abandon_ratio), calls.abandon_status);
  }

  function renderQueues(queues) {
    fill($("queues-body"), queues.map((q) => el("tr", { "data-queue": q.queue }, [
      cell(label("queue", q.queue), "name"),
      cell(count(q.waiting), "num waiting"),
      cell(duration(q.longest_wait_seconds), "num", q.wait_status),
      cell(percent(q.service_level), "num", q.service_level_status),
      cell(duration(q.asa_seconds), "num", q.asa_status),
    ])));
  }

  function renderSatisfaction(items) {
    $("satisfaction-list").replaceChildren(...items.map((item) => {
      const width = item.ratio === null ? 0 : Math.max(0, Math.min(100, item.ratio * 100));
      const bar = el("div", { className: "bar" }, [el("div", { className: "fill " + item.status, style: { width: width + "%" } })]);
      if (item.target !== null) {
        bar.appendChild(el("div", { className: "target-mark", style: { insetInlineStart: item.target * 100 + "%" } }));
      }
      const ratio = el("span", { className: "ratio " + item.status, "data-channel": item.channel, title: stateWord(item.status) },
                       stateNodes(percent(item.ratio), item.status));
      const foot = [];
      if (item.target !== null) foot.push(el("span", {}, [words(["target", "المستهدف"]), el("span", { text: " " + percent(item.target) })]));
      if (item.responses !== null) foot.push(el("span", {}, [el("span", { text: count(item.responses) + " " }), words(["responses", "إجابة"])]));
      return el("li", { "data-channel": item.channel }, [
        el("div", { className: "bar-head" }, [label("channel", item.channel), ratio]),
        bar,
        el("div", { className: "bar-foot" }, foot),
      ]);
    }));
  }

  function renderTickets(tickets) {
    for (const key of ["on_track", "at_risk", "breached", "no_sla"]) setFigure("tickets-" + key, count(tickets[key]));
    fill($("tickets-by-channel"), tickets.by_channel.map((c) => el("tr", { "data-channel": c.channel }, [
      cell(label("channel", c.channel), "name"),
      cell(count(c.on_track), "num", "on_target"),
      cell(count(c.at_risk), "num", "at_risk"),
      cell(count(c.breached), "num", "breached"),
    ])));
    fill($("breaches-body"), tickets.breaches.map((b) => el("tr", { className: b.still_open ? "open" : "closed",
                                                                  "data-ticket": b.ticket_id }, [
      // a supervisor's screen opens the ticket's SLA story; the wall itself is never clicked
      cell(el("a", { href: "/tickets/" + encodeURIComponent(b.ticket_id), text: b.ticket_id }), "ticket-id"),
      cell(b.category.replace(/([._])/g, "$1\u200b"), "category"),  // may break after . and _
      cell(label("channel", b.channel), "name"),
      cell(label("target", b.target), "name"),
      cell(duration(b.late_seconds) + (b.still_open ? "" : " ✓"), "num late", "breached"),
    ])));
    $("breaches-empty").hidden = tickets.breaches.length > 0;
  }

  function renderWalkIn(centres) {
    fill($("walkin-body"), centres.map((c) => el("tr", { "data-centre": c.centre }, [
      cell(label("centre", c.centre), "name"),
      cell(count(c.waiting), "num waiting"),
      cell(duration(c.longest_wait_seconds), "num", c.wait_status),
      cell(count(c.completed_today), "num"),
    ])));
  }

  function showStale(pair) {
    $("stale").hidden = !pair;
    $("stale-en").textContent = pair ? pair[0] : "";
    $("stale-ar").textContent = pair ? pair[1] : "";
    document.body.classList.toggle("is-stale", Boolean(pair));
  }

  function render(board) {
    state.board = board;
    state.keepaliveSeconds = board.keepalive_seconds || state.keepaliveSeconds;
    renderCalls(board.calls);
    renderSatisfaction(board.satisfaction);
    renderTickets(board.tickets);
    renderQueues(board.calls.queues);
    renderWalkIn(board.walk_in);
    $("data-as-of").textContent = board.data_as_of ? F.clock(new Date(board.data_as_of), false) : "—";
    document.documentElement.dataset.generatedAt = board.generated_at;
    updateBanner();
  }

  function updateBanner() {
    const board = state.board;
    if (state.lostSince && Date.now() - state.lostSince > 3000) return showStale(LOST);
    if (board && board.stale) {
      const age = board.data_as_of ? duration((Date.parse(board.generated_at) - Date.parse(board.data_as_of)) / 1000) : null;
      return showStale([
        "Data is not updating" + (age ? " — newest data is " + age + " old" : " — no data yet"),
        "البيانات لا تتحدث" + (age ? " — آخر بيانات منذ " + F.isolate(age) : " — لا توجد بيانات بعد")]);
    }
    showStale(null);
  }

  function setLive(status) {
    const node = $("live");
    node.className = "live " + status;
    node.querySelector(".sym").textContent = { live: "●", reconnecting: "↻", connecting: "◌" }[status];
    node.querySelector(".live-en").textContent = { live: "live", reconnecting: "reconnecting", connecting: "connecting" }[status];
    node.querySelector(".live-ar").textContent = { live: "مباشر", reconnecting: "إعادة الاتصال", connecting: "جارٍ الاتصال" }[status];
    document.documentElement.dataset.live = status;
  }

  function lost() {
    if (!state.lostSince) state.lostSince = Date.now();
    setLive("reconnecting");
  }

  function connect() {
    if (state.source) state.source.close();
    clearTimeout(state.retry);
    const source = new EventSource("/api/wallboard/events");
    state.source = source;
    const heard = () => { state.lastMessage = Date.now(); };
    source.addEventListener("board", (event) => {
      heard();
      state.lostSince = 0;
      setLive("live");
      render(JSON.parse(event.data));
    });
    source.addEventListener("ping", heard);
    source.addEventListener("unavailable", () => { heard(); lost(); updateBanner(); });
    source.onerror = () => {
      lost();
      // a refused answer (401, 503) closes the stream for good: open a new one
      if (source.readyState === EventSource.CLOSED) state.retry = setTimeout(connect, 2000);
    };
  }

  function tick() {
    const now = new Date();
    $("clock-time").textContent = F.clock(now, true);
    $("clock-date").textContent = new Intl.DateTimeFormat("en-GB", {
      timeZone: F.ZONE, weekday: "long", day: "numeric", month: "long", year: "numeric",
    }).format(now);
    $("clock-date-ar").textContent = new Intl.DateTimeFormat(
      "ar-AE-u-ca-islamic-umalqura-nu-" + (F.DIGITS === "arab" ? "arab" : "latn"), {
        timeZone: F.ZONE, weekday: "long", day: "numeric", month: "long", year: "numeric",
      }).format(now);
    // three missed pings: the connection is half open; drop it and connect again
    if (state.lastMessage && Date.now() - state.lastMessage > state.keepaliveSeconds * 3000) {
      state.lastMessage = 0;
      lost();
      connect();
    }
    updateBanner();
  }

  window.addEventListener("resize", () => { if (state.board) render(state.board); });
  setLive("connecting");
  tick();
  setInterval(tick, 1000);
  connect();
})();
