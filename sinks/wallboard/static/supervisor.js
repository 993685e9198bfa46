/* Tawasul supervisor view: /api/supervisor every 10 s, teams and agents ranked by need of help. */
"use strict";
(function () {
  const F = window.TAWASUL_FORMAT;
  const { el, words, count, percent, duration } = F;
  const $ = (id) => document.getElementById(id);
  const state = { period: "today", view: null };
  const COLUMNS = [
    [["Calls answered", "المكالمات المجابة"], (f) => count(f.calls_answered)],
    [["Avg. handle time", "متوسط مدة المعالجة"], (f) => duration(f.average_handle_seconds)],
    [["Satisfaction", "الرضا"], (f) => percent(f.satisfaction)],
    [["Responses", "الإجابات"], (f) => count(f.responses)],
    [["Open tickets", "الطلبات المفتوحة"], (f) => count(f.open_tickets)],
    [["▲ At risk", "▲ مهددة"], (f) => count(f.at_risk)],
    [["✕ Breached", "✕ متجاوزة"], (f) => count(f.breached)],
  ];

  function table(node, rows, withTeam) {
    const head = [el("th", {}, [words(["Needs help", "يحتاج دعماً"])]), el("th", {}, [words(["Name", "الاسم"])])];
    if (withTeam) head.push(el("th", {}, [words(["Team", "الفريق"])]));
    for (const [name] of COLUMNS) head.push(el("th", { className: "num" }, [words(name)]));
    const body = rows.map((f) => {
      const cells = [el("td", { className: "flag", text: f.needs_help ? "⚠ " + (F.MODE === "ar" ? "نعم" : F.MODE === "en" ? "yes" : "yes · نعم") : "" }),
                     el("td", { className: "name", dir: "ltr", text: f.name })];
      if (withTeam) cells.push(el("td", { dir: "ltr", text: f.team || "—" }));
      for (const [, value] of COLUMNS) cells.push(el("td", { className: "num", text: value(f) }));
      return el("tr", { className: f.needs_help ? "needs-help" : "", "data-name": f.name }, cells);
    });
    node.replaceChildren(el("thead", {}, [el("tr", {}, head)]), el("tbody", {}, body));
  }

  function render() {
    const view = state.view;
    if (!view) return;
    table($("teams"), view.teams[state.period], false);
    table($("agents"), view.agents[state.period], true);
    $("as-of").textContent = F.clock(new Date(view.generated_at), false);
    for (const button of document.querySelectorAll("[data-period]")) {
      button.classList.toggle("chosen", button.dataset.period === state.period);
    }
  }

  async function load() {
    try {
      const response = await fetch("/api/supervisor", { cache: "no-store" });
      if (!response.ok) throw new Error("HTTP " + response.status);
      state.view = await response.json();
      $("stale").hidden = true;
      render();
    } catch (error) {
      $("stale").hidden = false;
    } finally {
      setTimeout(load, 10000);
    }
  }

  for (const button of document.querySelectorAll("[data-period]")) {
    button.addEventListener("click", () => { state.period = button.dataset.period; render(); });
  }
  load();
})();
