// SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
// gizcloud web console: a one-page app on the admin API (no build step, no
// libraries). The admin token is kept in sessionStorage (this tab only) and
// sent as "Authorization: Bearer"; never in a URL. The live timeline uses
// EventSource on /console/stream with a single-use ticket minted by
// POST /admin/events/ticket. Every value from the server is put in the page
// as text (textContent), never as HTML. Keep this file ASCII (non-ASCII text
// as \u escapes): cmake/EmbedFile.cmake compiles it in as a char array.
"use strict";

const TOKEN_KEY = "gizcloud.admin_token";
const PAGE = 50;
const TIMELINE_MAX = 500; // rows kept in the open timeline
const $app = document.getElementById("app");

// ---- small helpers -------------------------------------------------------------

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of kids.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }

function flash(text, isError) {
  const f = document.getElementById("flash");
  f.textContent = text;
  f.className = isError ? "error" : "";
  f.hidden = false;
  clearTimeout(flash.t);
  flash.t = setTimeout(() => { f.hidden = true; }, isError ? 8000 : 4000);
}

function ago(unixS) {
  if (!unixS) return "never";
  const d = Math.max(0, Math.round(Date.now() / 1000 - unixS));
  if (d < 60) return d + " s ago";
  if (d < 3600) return Math.floor(d / 60) + " min ago";
  if (d < 86400) return Math.floor(d / 3600) + " h ago";
  return Math.floor(d / 86400) + " d ago";
}

function isoTime(ms) {
  const d = new Date(ms);
  return d.toISOString().replace("T", " ").replace("Z", "");
}

function token() { return sessionStorage.getItem(TOKEN_KEY); }

class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.message || body.error)) || ("HTTP " + status));
    this.status = status;
    this.body = body;
  }
}

// One admin call; JSON in and out. A 401 ends the session.
async function api(method, path, body) {
  const headers = { "Authorization": "Bearer " + token() };
  const opts = { method, headers, cache: "no-store", credentials: "omit" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  let j = null;
  try { j = await r.json(); } catch (e) { j = null; }
  if (r.status === 401 && path.startsWith("/admin/")) {
    logout("The admin token was refused; log in again.");
    throw new ApiError(401, j);
  }
  if (!r.ok) throw new ApiError(r.status, j);
  return j;
}

// ---- command names of the Gizwits v4 protocol ------------------------------------

const CMD_NAMES = {
  "0x0001": "device login", "0x0003": "heartbeat",
  "0x0010": "set log level (app\u2192dev)", "0x0011": "log level ACK (dev\u2192app)",
  "0x0012": "device log record", "0x0090": "business (app\u2192dev)",
  "0x0091": "business reply (dev\u2192app)", "0x0093": "business with SN (app\u2192dev)",
  "0x0094": "SN ACK (dev\u2192app)", "0x020E": "OTA push v4.0", "0x020F": "app count request",
  "0x0210": "app count", "0x0211": "OTA push v4.1", "0x021C": "version report",
  "0x021E": "reset notice", "0x022C": "OTA progress",
};
const KINDS = ["register", "unregister", "provision", "ota_check", "download", "connect",
  "connack_refused", "subscribe", "publish_in", "publish_out", "acl_denied", "ping_limit",
  "keepalive_timeout", "disconnect", "ota_campaign"];

function cmdName(cmd) { return cmd ? (CMD_NAMES[cmd.toUpperCase().replace("0X", "0x")] || "") : ""; }

// A one-line summary of an event's fields.
function eventSummary(ev) {
  const parts = [];
  if (ev.cmd) parts.push(ev.cmd + " " + cmdName(ev.cmd));
  if (ev.topic) parts.push(ev.topic);
  const keys = ["status", "error_code", "reason", "soft_version", "hard_version", "offered",
    "fid", "bytes", "sn", "count", "log_level", "length", "peer", "client", "state", "ota"];
  for (const k of keys) {
    if (ev[k] === undefined || ev[k] === null || ev[k] === "") continue;
    if (k === "length" && ev.cmd) { parts.push(ev[k] + " B"); continue; }
    parts.push(k + "=" + (typeof ev[k] === "object" ? JSON.stringify(ev[k]) : ev[k]));
  }
  return parts.join("  ");
}

function spacedHex(h) { return (h || "").replace(/(..)/g, "$1 ").trim(); }

// ---- session ---------------------------------------------------------------------

function logout(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  stopLive();
  if (message) flash(message, true);
  location.hash = "#/login";
  route();
}

document.getElementById("logout").addEventListener("click", () => logout());

function viewLogin() {
  document.getElementById("nav").hidden = true;
  const input = el("input", { type: "password", id: "token", autocomplete: "off",
    placeholder: "GIZ_ADMIN_TOKEN", required: true });
  const err = el("p", { class: "muted", id: "login-error" });
  const form = el("form", { class: "card login", id: "login-form" },
    el("h1", { text: "Log in" }),
    el("p", { class: "muted", text: "The admin token of this gizcloud (GIZ_ADMIN_TOKEN). " +
      "It is kept for this tab only." }),
    input, el("button", { class: "primary", type: "submit", id: "login-submit" }, "Log in"), err);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    err.textContent = "";
    const t = input.value.trim();
    if (!t) return;
    try {
      const r = await fetch("/admin/devices?limit=1", {
        headers: { "Authorization": "Bearer " + t }, cache: "no-store", credentials: "omit" });
      if (r.status === 401) { err.textContent = "Wrong token."; return; }
      if (r.status === 429) { err.textContent = "Too many wrong tokens: wait a minute."; return; }
      if (!r.ok) { err.textContent = "The server answered " + r.status + "."; return; }
      sessionStorage.setItem(TOKEN_KEY, t);
      input.value = "";
      location.hash = "#/fleet";
    } catch (ex) {
      err.textContent = "Cannot reach the GService: " + ex.message;
    }
  });
  clear($app).append(form);
  input.focus();
}

// ---- fleet -----------------------------------------------------------------------

const fleetState = { offset: 0, q: "", pk: "", online: false };
let products = null; // product_key -> name

async function loadProducts() {
  const j = await api("GET", "/admin/products?limit=1000");
  products = {};
  for (const p of j.products || []) products[p.product_key] = p.name;
  return j.products || [];
}

function setBroker(b) {
  const e = document.getElementById("broker");
  if (!b) { e.textContent = ""; return; }
  e.textContent = b.alive ? "broker up" : "broker DOWN (presence unknown)";
  e.className = "broker" + (b.alive ? "" : " bad");
}

function presenceDot(d) {
  const cls = d.presence === "online" ? "dot on" : d.presence === "unknown" ? "dot unknown" : "dot";
  return el("span", {}, el("span", { class: cls }), d.presence || (d.online ? "online" : "offline"));
}

async function viewFleet() {
  if (!products) await loadProducts();
  const counts = el("div", { class: "counts", id: "fleet-counts" });
  const q = el("input", { type: "search", id: "fleet-q", placeholder: "DID prefix or MAC",
    value: fleetState.q, size: 26 });
  const pk = el("select", { id: "fleet-product" }, el("option", { value: "" }, "all products"),
    Object.entries(products).map(([k, n]) =>
      el("option", { value: k, selected: k === fleetState.pk }, n + " (" + k.slice(0, 8) + "\u2026)")));
  const online = el("input", { type: "checkbox", id: "fleet-online", checked: fleetState.online });
  const table = el("table", { id: "fleet-table" });
  const pager = el("div", { class: "row pager", id: "fleet-pager" });
  const form = el("form", { class: "row card" }, q, pk,
    el("label", {}, online, " online only"), el("button", { type: "submit" }, "Filter"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    fleetState.q = q.value.trim(); fleetState.pk = pk.value; fleetState.online = online.checked;
    fleetState.offset = 0;
    refresh();
  });
  pk.addEventListener("change", () => form.requestSubmit());
  online.addEventListener("change", () => form.requestSubmit());
  clear($app).append(el("h1", { text: "Fleet" }), counts, form, table, pager);

  async function refresh() {
    const base = fleetState.pk ? "product_key=" + fleetState.pk + "&" : "";
    let list;
    try {
      if (fleetState.q) {
        if (!/^[0-9A-Za-z]{1,22}$/.test(fleetState.q.replace(/[:-]/g, ""))) {
          flash("Search by letters and digits: a DID prefix or part of a MAC.", true);
          return;
        }
        list = await api("GET", "/admin/device_search?" + base + "q=" +
          encodeURIComponent(fleetState.q.replace(/[:-]/g, "")) + "&limit=" + PAGE +
          "&offset=" + fleetState.offset);
      } else {
        list = await api("GET", "/admin/devices?" + base + (fleetState.online ? "online=1&" : "") +
          "limit=" + PAGE + "&offset=" + fleetState.offset);
      }
      const [all, on] = await Promise.all([
        api("GET", "/admin/devices?" + base + "limit=1"),
        api("GET", "/admin/devices?" + base + "online=1&limit=1")]);
      setBroker(list.broker || all.broker);
      clear(counts).append(
        el("div", {}, el("b", { id: "count-total", text: all.total }), "devices"),
        el("div", {}, el("b", { id: "count-online", text: on.total }), "online"),
        el("div", {}, el("b", { text: Object.keys(products).length }), "products"));
      if (fleetState.q) counts.append(el("div", {}, el("b", { id: "count-matches", text: list.total }), "matches"));
    } catch (ex) {
      if (ex.status !== 401) flash("Fleet: " + ex.message, true);
      return;
    }
    drawTable(list);
  }

  function drawTable(list) {
    clear(table).append(el("thead", {}, el("tr", {}, ["", "DID", "MAC", "product", "status",
      "WiFi soft / hard", "MCU soft / hard", "last seen"].map((h) => el("th", { text: h })))));
    const tb = el("tbody");
    for (const d of list.devices || []) {
      const tr = el("tr", { class: "click", "data-did": d.did },
        el("td", {}, presenceDot(d)),
        el("td", { class: "mono" }, el("a", { href: "#/device/" + d.did, text: d.did })),
        el("td", { class: "mono", text: d.mac }),
        el("td", { text: products[d.product_key] || d.product_key }),
        el("td", {}, el("span", { class: "badge" + (d.status === "active" ? "" : " bad"),
          text: d.status })),
        el("td", { class: "mono", text: (d.wifi_soft_version || "\u2013") + " / " + (d.wifi_hard_version || "\u2013") }),
        el("td", { class: "mono", text: (d.mcu_soft_version || "\u2013") + " / " + (d.mcu_hard_version || "\u2013") }),
        el("td", { title: d.last_seen ? new Date(d.last_seen * 1000).toISOString() : "",
          text: ago(d.last_seen) }));
      tr.addEventListener("click", (e) => { if (e.target.tagName !== "A") location.hash = "#/device/" + d.did; });
      tb.append(tr);
    }
    if (!(list.devices || []).length)
      tb.append(el("tr", {}, el("td", { colspan: 8, class: "muted", text: "No devices." })));
    table.append(tb);
    const total = list.total || 0, from = total ? fleetState.offset + 1 : 0;
    const to = fleetState.offset + (list.devices || []).length;
    const prev = el("button", { type: "button", id: "fleet-prev", disabled: fleetState.offset === 0 }, "\u2039 previous");
    const next = el("button", { type: "button", id: "fleet-next", disabled: to >= total }, "next \u203a");
    prev.addEventListener("click", () => { fleetState.offset = Math.max(0, fleetState.offset - PAGE); refresh(); });
    next.addEventListener("click", () => { fleetState.offset += PAGE; refresh(); });
    clear(pager).append(prev, el("span", { class: "muted", id: "fleet-range",
      text: from + "\u2013" + to + " of " + total }), next);
  }

  await refresh();
  every(5000, refresh); // presence changes appear without a reload
}

// ---- products --------------------------------------------------------------------

async function viewProducts() {
  const list = await loadProducts();
  let fw = [];
  try { fw = (await api("GET", "/admin/firmware")).firmware || []; } catch (e) { fw = []; }
  const box = el("div");
  clear($app).append(el("h1", { text: "Products" }), box);
  for (const p of list) {
    const mine = fw.filter((f) => f.product_key === p.product_key);
    const dp = el("div", { class: "muted", text: "data points: \u2026" });
    box.append(el("div", { class: "card" },
      el("h2", {}, p.name, " ", el("span", { class: "mono muted", text: p.product_key })),
      el("div", {}, "firmware: ", mine.length ? "" : "none"),
      mine.length ? el("table", {}, el("tr", {}, ["id", "type", "soft", "hard", "size", "md5"].map((h) => el("th", { text: h }))),
        mine.map((f) => el("tr", {}, el("td", { text: f.id }), el("td", { text: f.type === 1 ? "WiFi" : "MCU" }),
          el("td", { class: "mono", text: f.soft_version }), el("td", { class: "mono", text: f.hard_version }),
          el("td", { text: f.size }), el("td", { class: "mono", text: f.md5 })))) : null,
      dp));
    api("GET", "/admin/products/" + p.product_key + "/datapoints").then((j) => {
      const ents = (j && (j.entities || (j.datapoints && j.datapoints.entities))) || [];
      const attrs = ents.length ? ents[0].attrs || [] : [];
      dp.textContent = attrs.length ? "data points: " + attrs.map((a) => a.name + " (" + a.data_type + ")").join(", ")
        : "data points: none imported";
    }).catch(() => { dp.textContent = "data points: none imported"; });
  }
  if (!list.length) box.append(el("p", { class: "muted", text: "No products yet (POST /admin/products)." }));
}

// ---- one device ------------------------------------------------------------------

let live = null; // the open EventSource and its state

function stopLive() {
  if (live) { live.stopped = true; if (live.es) live.es.close(); clearTimeout(live.retry); live = null; }
}

async function viewDevice(did) {
  const head = el("div", { class: "card", id: "device-head" }, "\u2026");
  const actions = el("div", { class: "card", id: "device-actions" });
  const kindSel = el("select", { id: "tl-kind" }, el("option", { value: "" }, "all kinds"),
    KINDS.map((k) => el("option", { value: k }, k)));
  const hexBox = el("input", { type: "checkbox", id: "tl-hex" });
  const state = el("span", { class: "muted", id: "tl-state", text: "connecting\u2026" });
  const tbody = el("tbody", { id: "tl-body" });
  const timeline = el("div", { class: "timeline", id: "timeline" },
    el("table", {}, el("thead", {}, el("tr", {}, ["time", "kind", "source", "what"].map((h) => el("th", { text: h })))), tbody));
  const logs = el("div", { class: "card", id: "device-logs" }, el("h2", { text: "Stored logs" }));
  const latest = el("div", { class: "card", id: "device-latest" }, el("h2", { text: "Latest data points" }));
  clear($app).append(el("h1", {}, "Device ", el("span", { class: "mono", text: did })), head,
    el("div", { class: "split" },
      el("div", {}, el("div", { class: "row" }, el("h2", { text: "Timeline" }), kindSel,
        el("label", {}, hexBox, " raw hex"), state), timeline),
      el("div", {}, actions, latest, logs)));

  const rows = []; // {ev, tr}
  const seen = new Set();
  function shows(ev) { return !kindSel.value || ev.kind === kindSel.value; }
  function addEvent(ev, isLive) {
    if (seen.has(ev.id)) return;
    seen.add(ev.id);
    const hex = el("pre", { class: "hex mono", hidden: !hexBox.checked },
      ev.payload ? spacedHex(ev.payload) + (ev.payload_truncated ? " \u2026" : "") : JSON.stringify(ev));
    const tr = el("tr", { class: isLive ? "new" : "", "data-id": ev.id, "data-kind": ev.kind,
      "data-ts": ev.ts, "data-shown": Date.now(), "data-cmd": ev.cmd || "", hidden: !shows(ev) },
      el("td", { class: "mono", text: isoTime(ev.ts) }),
      el("td", { class: "kind" }, el("span", { class: "badge" + (/refused|denied|limit|timeout/.test(ev.kind) ? " bad" : ""), text: ev.kind })),
      el("td", { class: "muted", text: ev.source || "" }),
      el("td", {}, el("span", { class: "mono", text: eventSummary(ev) }), hex));
    tr.addEventListener("click", () => { hex.hidden = !hex.hidden; });
    tbody.prepend(tr); // newest on top
    rows.push({ ev, tr });
    while (rows.length > TIMELINE_MAX) { const r = rows.shift(); r.tr.remove(); }
  }
  kindSel.addEventListener("change", () => { for (const r of rows) r.tr.hidden = !shows(r.ev); });
  hexBox.addEventListener("change", () => {
    for (const p of tbody.querySelectorAll("pre.hex")) p.hidden = !hexBox.checked;
  });

  let dev = null;
  async function loadHead() {
    try { dev = await api("GET", "/admin/devices/" + did); } catch (ex) {
      clear(head).append(ex.status === 404 ? "No such device." : "Error: " + ex.message);
      return false;
    }
    setBroker(dev.broker);
    const kv = (k, v, id) => el("div", { class: "kv" }, el("span", { text: k }), el("span", { class: "mono", id, text: v === null || v === undefined || v === "" ? "\u2013" : v }));
    clear(head).append(el("div", { class: "row" }, presenceDot(dev),
      el("span", { class: "badge" + (dev.status === "active" ? " ok" : " bad"), id: "dev-status", text: dev.status })),
    el("div", { class: "grid" },
      kv("product", (products && products[dev.product_key]) || dev.product_key),
      kv("MAC", dev.mac), kv("presence", dev.presence, "dev-presence"),
      kv("connected since", dev.connected_since ? new Date(dev.connected_since * 1000).toISOString() : null),
      kv("last seen", ago(dev.last_seen)), kv("peer", dev.peer),
      kv("keepalive", dev.keepalive), kv("WiFi soft / hard", (dev.wifi_soft_version || "\u2013") + " / " + (dev.wifi_hard_version || "\u2013"), "dev-wifi"),
      kv("MCU soft / hard", (dev.mcu_soft_version || "\u2013") + " / " + (dev.mcu_hard_version || "\u2013")),
      kv("registered", dev.created_at ? new Date(dev.created_at * 1000).toISOString() : null),
      dev.details ? kv("SDK", (dev.details.sdk_soft_version || "\u2013") + " / " + (dev.details.sdk_hard_version || "\u2013")) : null,
      dev.disabled_by ? kv("disabled by", dev.disabled_by) : null));
    if (!actions.firstChild) drawActions();
    const dis = document.getElementById("disable-btn");
    dis.textContent = dev.status === "active" ? "Disable" : "Enable";
    dis.className = dev.status === "active" ? "danger" : "";
    return true;
  }

  // drawn once (a redraw would drop what the user is typing)
  function drawActions() {
    const hex = el("input", { id: "send-hex", class: "mono", placeholder: "hex, e.g. 0102ff", size: 24 });
    const sn = el("input", { id: "send-sn", type: "number", min: 0, placeholder: "SN (0x0093)", size: 8 });
    const send = el("button", { type: "submit", class: "primary", id: "send-btn" }, "Send");
    const f1 = el("form", { class: "row", id: "send-form" }, hex, sn, send);
    f1.addEventListener("submit", (e) => {
      e.preventDefault();
      const body = { raw: hex.value.replace(/\s+/g, "") };
      if (sn.value !== "") body.sn = Number(sn.value);
      act("POST", "/admin/devices/" + did + "/send", body, (j) => "Queued " + j.cmd + " (" + j.length + " bytes)");
    });
    const lvl = el("select", { id: "log-level" }, [["0", "off"], ["1", "error"], ["3", "error+warn"], ["7", "error+warn+info"]]
      .map(([v, n]) => el("option", { value: v }, n)));
    const f2 = el("form", { class: "row", id: "log-form" }, "log levels ", lvl, el("button", { type: "submit" }, "Set (0x0010)"));
    f2.addEventListener("submit", (e) => {
      e.preventDefault();
      act("POST", "/admin/devices/" + did + "/send", { log_level: Number(lvl.value) }, () => "Log levels sent");
    });
    const otaType = el("select", { id: "ota-type" }, el("option", { value: "1" }, "WiFi"), el("option", { value: "2" }, "MCU"));
    const otaVer = el("select", { id: "ota-version" }, el("option", { value: "41" }, "v4.1 (0x0211)"), el("option", { value: "40" }, "v4.0 (0x020E)"));
    const f3 = el("form", { class: "row" }, "OTA ", otaType, otaVer, el("button", { type: "submit", id: "ota-btn" }, "Push"));
    f3.addEventListener("submit", (e) => {
      e.preventDefault();
      act("POST", "/admin/ota/push", { did, type: Number(otaType.value), ota_version: Number(otaVer.value) },
        (j) => "OTA push: " + j.targets + " online target(s)" + (j.firmware_matched ? "" : " (no matching firmware: " + (j.message || "the device will answer 9500") + ")"));
    });
    // data points: a write of one writable point (p0 0x01/0x11 in a 0x0090), when the product has a schema
    const dpName = el("select", { id: "dp-name" });
    const dpValue = el("input", { id: "dp-value", size: 10, placeholder: "value" });
    const f4 = el("form", { class: "row", id: "dp-form", hidden: true }, "write ", dpName, dpValue,
      el("button", { type: "submit", id: "dp-btn" }, "Write"));
    f4.addEventListener("submit", (e) => {
      e.preventDefault();
      const v = dpValue.value.trim();
      const value = v === "true" ? true : v === "false" ? false : v !== "" && !isNaN(Number(v)) ? Number(v) : v;
      act("POST", "/admin/devices/" + did + "/send", { attrs: { [dpName.value]: value } },
        (j) => "Write of " + dpName.value + " queued (" + j.cmd + ", " + j.length + " bytes)");
    });
    api("GET", "/admin/products/" + dev.product_key + "/datapoints").then((j) => {
      const ents = (j && j.entities) || [];
      const attrs = ents.length ? (ents[0].attrs || []).filter((a) => a.type === "status_writable") : [];
      for (const a of attrs) dpName.append(el("option", { value: a.name }, a.name + " (" + a.data_type + ")"));
      f4.hidden = !attrs.length;
    }).catch(() => {});
    const kick = el("button", { type: "button", id: "kick-btn" }, "Kick");
    kick.addEventListener("click", () => act("POST", "/admin/devices/" + did + "/kick", {}, () => "Kicked"));
    const dis = el("button", { type: "button", id: "disable-btn" });
    dis.addEventListener("click", () => {
      const what = dev.status === "active" ? "disable" : "enable";
      if (what === "disable" && !confirm("Disable " + did + "? It is kicked and refused until enabled.")) return;
      act("POST", "/admin/devices/" + did + "/" + what, {}, () => what === "disable" ? "Disabled" : "Enabled", true);
    });
    clear(actions).append(el("h2", { text: "Actions" }),
      el("div", { class: "muted", text: "Send a business message (0x0090, or 0x0093 with an SN) on app2dev/<DID>/console:" }),
      f1, f4, f2, f3, el("div", { class: "row" }, kick, dis));
  }

  async function act(method, path, body, ok, reload) {
    try {
      const j = await api(method, path, body);
      flash(ok(j || {}));
      if (reload) loadHead();
    } catch (ex) {
      if (ex.status !== 401) flash(ex.message + (ex.status ? " (" + ex.status + ")" : ""), true);
    }
  }

  async function loadLogs() {
    try {
      const j = await api("GET", "/admin/devices/" + did + "/logs?limit=50");
      const list = j.logs || [];
      clear(logs).append(el("h2", { text: "Stored logs" }), list.length ? el("table", { id: "logs-table" },
        list.map((l) => el("tr", {}, el("td", { class: "mono", text: l.ts ? new Date(l.ts * 1000).toISOString() : "" }),
          el("td", { text: ["", "error", "warn", "info"][l.level] || l.level }), el("td", { text: l.tags }),
          el("td", { class: "mono", text: l.content })))) : el("p", { class: "muted", text: "none" }));
    } catch (ex) { /* 404 handled by the head */ }
  }

  async function loadLatest() {
    try {
      const j = await api("GET", "/admin/devices/" + did + "/latest");
      const attrs = j.attr || j.attrs || {};
      const keys = Object.keys(attrs);
      clear(latest).append(el("h2", { text: "Latest data points" }),
        keys.length ? el("table", { id: "latest-table" }, keys.map((k) => el("tr", {}, el("td", { text: k }),
          el("td", { class: "mono", "data-attr": k, text: JSON.stringify(attrs[k]) })))) : el("p", { class: "muted", text: "none reported" }),
        j.updated_at ? el("p", { class: "muted", text: "reported " + ago(j.updated_at) }) : null);
    } catch (ex) {
      clear(latest).append(el("h2", { text: "Latest data points" }),
        el("p", { class: "muted", text: ex.status === 404 ? "not available" : ex.message }));
    }
  }

  if (!(await loadHead())) return;
  // history: the last 24 h (the list pages oldest first), then the live stream after it
  let lastId = 0;
  try {
    let since = "since_ts=" + (Date.now() - 86400000);
    for (let i = 0; i < 5; i++) {
      const page = await api("GET", "/admin/devices/" + did + "/events?limit=1000&" + since);
      for (const ev of page.events || []) { addEvent(ev, false); lastId = Math.max(lastId, ev.id); }
      if (!page.next) break;
      since = "since=" + page.next;
    }
  } catch (ex) { if (ex.status !== 401) flash("Timeline: " + ex.message, true); }
  startLive(did, lastId, addEvent, state);
  loadLogs();
  loadLatest();
  every(5000, () => { loadHead(); loadLatest(); });
  every(15000, loadLogs);
}

// The event stream with a fresh single-use ticket each (re)connect, resuming
// after the last event seen.
function startLive(did, lastId, onEvent, stateEl) {
  stopLive();
  const me = { stopped: false, es: null, last: lastId, retry: null, delay: 500 };
  live = me;
  async function connect() {
    if (me.stopped) return;
    let t;
    try { t = await api("POST", "/admin/events/ticket", { did }); } catch (ex) {
      stateEl.textContent = "stream: " + ex.message;
      me.retry = setTimeout(connect, me.delay = Math.min(me.delay * 2, 10000));
      return;
    }
    if (me.stopped) return;
    const es = new EventSource("/console/stream?ticket=" + t.ticket + "&did=" + did + "&since=" + me.last);
    me.es = es;
    es.onopen = () => { stateEl.textContent = "live"; stateEl.className = "badge ok"; me.delay = 500; };
    es.onmessage = (m) => {
      let ev;
      try { ev = JSON.parse(m.data); } catch (e) { return; }
      if (ev.id > me.last) me.last = ev.id;
      onEvent(ev, true);
    };
    es.onerror = () => {
      // the ticket was used: a reconnect needs a new one
      es.close();
      if (me.stopped) return;
      stateEl.textContent = "reconnecting\u2026"; stateEl.className = "muted";
      me.retry = setTimeout(connect, me.delay = Math.min(me.delay * 2, 10000));
    };
  }
  connect();
}

// ---- OTA campaigns ---------------------------------------------------------------

const CDEV_STATES = ["pending", "notified", "checked", "offered", "downloading", "downloaded",
  "updated", "failed"];
const STATE_COLORS = { pending: "#b6bcc8", notified: "#9ecbff", checked: "#79b8ff", offered: "#54aeff",
  downloading: "#218bff", downloaded: "#0969da", updated: "#1a7f37", failed: "#cf222e",
  skipped: "#9a6700", cancelled: "#6e7781" };

async function viewCampaigns() {
  let list;
  try { list = await api("GET", "/admin/ota/campaigns"); } catch (ex) {
    clear($app).append(el("h1", { text: "OTA campaigns" }),
      el("p", { class: "muted", text: ex.status === 404 ? "This GService has no campaign API." : ex.message }));
    return;
  }
  if (!products) await loadProducts();
  let fw = [];
  try { fw = (await api("GET", "/admin/firmware")).firmware || []; } catch (e) { fw = []; }
  const name = el("input", { id: "camp-name", placeholder: "name", required: true });
  const fwSel = el("select", { id: "camp-fw" }, fw.map((f) => el("option", { value: f.id },
    (products[f.product_key] || f.product_key.slice(0, 8)) + " \u00b7 " + (f.type === 1 ? "WiFi" : "MCU") + " " + f.soft_version +
    (f.hard_version ? " (" + f.hard_version + ")" : ""))));
  const pct = el("input", { id: "camp-percent", type: "number", min: 1, max: 100, value: 100, size: 4 });
  const canary = el("input", { id: "camp-canary", type: "number", min: 0, value: 0, size: 4 });
  const form = el("form", { class: "card row", id: "camp-form" }, el("b", { text: "New campaign" }), name, fwSel,
    el("label", {}, "percent ", pct), el("label", {}, "canaries ", canary),
    el("button", { type: "submit", class: "primary", id: "camp-create" }, "Create"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = fw.find((x) => String(x.id) === fwSel.value);
    if (!f) { flash("Upload firmware first.", true); return; }
    const body = { name: name.value, product_key: f.product_key, type: f.type, firmware_id: f.id };
    if (Number(pct.value) < 100) body.percent = Number(pct.value);
    if (Number(canary.value) > 0) body.canary = Number(canary.value);
    try {
      const c = await api("POST", "/admin/ota/campaigns", body);
      location.hash = "#/campaign/" + c.id;
    } catch (ex) { if (ex.status !== 401) flash("Campaign: " + ex.message, true); }
  });
  const table = el("table", { id: "camp-table" });
  clear($app).append(el("h1", { text: "OTA campaigns" }), form, table);
  function draw(l) {
    clear(table).append(el("tr", {}, ["id", "name", "state", "firmware", "devices", "progress"].map((h) => el("th", { text: h }))));
    for (const c of l.campaigns || []) {
      const tr = el("tr", { class: "click" }, el("td", { text: c.id }),
        el("td", {}, el("a", { href: "#/campaign/" + c.id, text: c.name })), el("td", {}, el("span", { class: "badge", text: c.state })),
        el("td", { class: "mono", text: (c.soft_version || "") }), el("td", { text: c.devices }),
        el("td", {}, c.counts ? bar(c.counts) : ""));
      tr.addEventListener("click", () => { location.hash = "#/campaign/" + c.id; });
      table.append(tr);
    }
    paintBars(table);
  }
  draw(list);
  every(3000, async () => draw(await api("GET", "/admin/ota/campaigns")));
}

function bar(counts) {
  const total = Object.values(counts).reduce((a, b) => a + b, 0) || 1;
  return el("div", { class: "bar", title: JSON.stringify(counts) }, CDEV_STATES.filter((s) => counts[s]).map((s) =>
    el("span", { style: null, "data-w": (100 * counts[s] / total).toFixed(1), "data-c": STATE_COLORS[s] })));
}

// widths and colours set through the CSSOM (allowed by the CSP, unlike style attributes)
function paintBars(root) {
  for (const s of root.querySelectorAll(".bar span")) {
    s.style.width = s.dataset.w + "%";
    s.style.background = s.dataset.c;
  }
}

async function viewCampaign(id) {
  const head = el("div", { class: "card", id: "camp-head" });
  const counts = el("div", { class: "counts", id: "camp-counts" });
  const table = el("table", { id: "camp-devices" });
  clear($app).append(el("h1", {}, "Campaign ", el("span", { text: id })), head, counts, table);
  async function refresh() {
    let c;
    try { c = await api("GET", "/admin/ota/campaigns/" + id); } catch (ex) {
      clear(head).append(ex.status === 404 ? "No such campaign." : ex.message);
      return;
    }
    const btn = (what) => {
      const b = el("button", { type: "button", id: "camp-" + what }, what);
      b.addEventListener("click", async () => {
        try { await api("POST", "/admin/ota/campaigns/" + id + "/" + what, {}); flash("Campaign " + what); refresh(); }
        catch (ex) { if (ex.status !== 401) flash(ex.message, true); }
      });
      return b;
    };
    clear(head).append(el("div", { class: "row" }, el("b", { text: c.name || "" }),
      el("span", { class: "badge", id: "camp-state", text: c.state }),
      c.reason ? el("span", { class: "muted", text: c.reason }) : null,
      el("span", { class: "mono muted", text: (c.soft_version || "") + " \u00b7 " + (c.product_key || "") }),
      c.state === "running" ? btn("pause") : null, c.state === "paused" ? btn("resume") : null,
      c.state === "running" || c.state === "paused" ? btn("cancel") : null),
    c.counts ? bar(c.counts) : null);
    paintBars(head);
    clear(counts).append(...Object.entries(c.counts || {}).map(([s, n]) =>
      el("div", {}, el("b", { "data-state": s, text: n }), s)));
    clear(table).append(el("tr", {}, ["DID", "state", "reason", "from", "version"].map((h) => el("th", { text: h }))),
      ...(c.devices || []).map((d) => el("tr", {}, el("td", { class: "mono" }, el("a", { href: "#/device/" + d.did, text: d.did })),
        el("td", {}, el("span", { class: "badge", "data-did": d.did, text: d.state })), el("td", { text: d.reason || "" }),
        el("td", { class: "mono", text: d.from_version || "" }), el("td", { class: "mono", text: d.version || "" }))));
  }
  await refresh();
  every(2000, refresh);
}

// ---- router ----------------------------------------------------------------------

let timers = [];
function every(ms, fn) { timers.push(setInterval(() => { Promise.resolve().then(fn).catch(() => {}); }, ms)); }
function stopTimers() { for (const t of timers) clearInterval(t); timers = []; }

async function route() {
  stopTimers();
  stopLive();
  const h = location.hash || "#/fleet";
  if (!token()) {
    if (h !== "#/login") { location.hash = "#/login"; return; }
    viewLogin();
    return;
  }
  document.getElementById("nav").hidden = false;
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", h.startsWith(a.getAttribute("href")));
  let m;
  try {
    if (h === "#/login" || h === "#/fleet" || h === "#/") await viewFleet();
    else if (h === "#/products") await viewProducts();
    else if (h === "#/campaigns") await viewCampaigns();
    else if ((m = /^#\/campaign\/(\d+)$/.exec(h))) await viewCampaign(m[1]);
    else if ((m = /^#\/device\/([0-9A-Za-z]{22})$/.exec(h))) await viewDevice(m[1]);
    else clear($app).append(el("p", { text: "No such page." }));
  } catch (ex) {
    if (ex.status !== 401) flash(ex.message, true);
  }
  window.__gizReady = h; // for tests: the view has drawn
}

window.addEventListener("hashchange", route);
route();
