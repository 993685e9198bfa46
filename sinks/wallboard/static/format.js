/* Tawasul wall display: language, digits and number formats shared by its pages.
   The server writes the choice on <html>: data-mode = both | ar | en, data-digits = latn | arab. */
"use strict";
(function () {
  const root = document.documentElement;
  const MODE = root.dataset.mode || "both";
  const DIGITS = root.dataset.digits || "latn";
  const LABELS = window.TAWASUL_LABELS || {};
  const ZONE = "Asia/Dubai";
  const NB = "\u00a0"; // keeps "98.5 %" and "2 h 15 m" on one line
  const numberLocale = DIGITS === "arab" ? "ar-AE-u-nu-arab" : "en-US";
  const units = MODE === "ar"
    ? { s: "ث", m: "د", h: "س", d: "ي", percent: "٪" }
    : { s: "s", m: "m", h: "h", d: "d", percent: "%" };
  const SYMBOLS = { on_target: "✓", at_risk: "▲", breached: "✕", none: "" };
  const STATE_WORDS = {
    on_target: ["on target", "ضمن المستهدف"], at_risk: ["at risk", "معرض للخطر"],
    breached: ["breached", "متجاوز"], none: ["no target", "بدون مستهدف"],
  };

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null) continue;
      if (key === "text") node.textContent = value;
      else if (key === "className") node.className = value;
      else if (key === "style") Object.assign(node.style, value); // CSSOM: allowed by the page's CSP
      else node.setAttribute(key, value);
    }
    for (const child of children || []) if (child) node.appendChild(child);
    return node;
  }

  /* A label in the page's language(s): [English, Arabic]. */
  function words(pair) {
    if (MODE === "ar") return el("span", { lang: "ar", dir: "rtl", text: pair[1] });
    if (MODE === "en") return el("span", { lang: "en", text: pair[0] });
    return el("span", { className: "pair" }, [
      el("span", { lang: "en", text: pair[0] }), el("span", { lang: "ar", dir: "rtl", text: pair[1] })]);
  }

  function label(kind, id) {
    const pair = (LABELS[kind] || {})[id];
    return pair ? words(pair) : el("span", { text: id, className: "id", dir: "ltr" });
  }

  const digits = (text) => (DIGITS === "arab" ? text.replace(/[0-9]/g, (d) => "٠١٢٣٤٥٦٧٨٩"[d]) : text);
  const number = (v, fraction) => new Intl.NumberFormat(numberLocale, {
    minimumFractionDigits: fraction || 0, maximumFractionDigits: fraction || 0, useGrouping: true }).format(v);
  const missing = (v) => v === null || v === undefined;
  const count = (v) => (missing(v) ? "—" : number(v));
  const percent = (v) => (missing(v) ? "—" : number(v * 100, 1) + NB + units.percent);

  /* "40 s", "3 m 05 s", "33 m", "2 h 11 m", "3 d 4 h": exact where it matters, short on the wall. */
  function duration(seconds) {
    if (missing(seconds)) return "—";
    const s = Math.round(seconds);
    const pad = (n) => number(n).padStart(2, DIGITS === "arab" ? "٠" : "0");
    if (s < 60) return number(s) + NB + units.s;
    const m = Math.floor(s / 60);
    if (m < 10) return number(m) + NB + units.m + " " + pad(s % 60) + NB + units.s;
    if (m < 60) return number(m) + NB + units.m;
    const h = Math.floor(m / 60);
    if (h < 48) return number(h) + NB + units.h + " " + pad(m % 60) + NB + units.m;
    return number(Math.floor(h / 24)) + NB + units.d + " " + number(h % 24) + NB + units.h;
  }

  function clock(date, withSeconds) {
    const options = { timeZone: ZONE, hour: "2-digit", minute: "2-digit", hour12: false };
    if (withSeconds) options.second = "2-digit";
    return new Intl.DateTimeFormat(DIGITS === "arab" ? "ar-AE-u-nu-arab" : "en-GB", options).format(date);
  }

  /* A figure with its state told by a symbol (and a word in its title), not by colour alone. */
  function stateText(text, status) {
    const sym = SYMBOLS[status] || "";
    return sym ? sym + NB + text : text;
  }
  function stateNodes(text, status) {
    const sym = SYMBOLS[status] || "";
    return sym ? [el("span", { className: "sym", text: sym }), document.createTextNode(NB + text)]
      : [document.createTextNode(text)];
  }
  function stateWord(status) {
    const pair = STATE_WORDS[status] || STATE_WORDS.none;
    return MODE === "ar" ? pair[1] : MODE === "en" ? pair[0] : pair[0] + " · " + pair[1];
  }

  // a left-to-right island inside Arabic text, so "1 h 00 m" keeps its order
  const isolate = (text) => "\u2066" + text + "\u2069";

  window.TAWASUL_FORMAT = Object.freeze({
    MODE, DIGITS, ZONE, el, words, label, digits, count, percent, duration, clock, stateText, stateNodes, stateWord, isolate,
  });
})();
