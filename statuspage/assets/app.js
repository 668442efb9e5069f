// mlbridge status page: renders each server-sent snapshot (mlbridge.NodeStatus as JSON).
// Everything from the node is inserted as text, never as HTML.
"use strict";

(function () {
  const main = document.getElementById("bridges");
  const conn = document.getElementById("conn");
  const updated = document.getElementById("updated");
  let lastMessage = 0;

  // el builds an element: el("td", {className: "num"}, "text", childNode, ...)
  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k.startsWith("data-") || k.startsWith("aria-") || k === "scope" || k === "role") e.setAttribute(k, v);
      else e[k] = v;
    }
    for (const c of children) e.append(c instanceof Node ? c : String(c));
    return e;
  }

  function setConn(state, text) {
    if (conn.dataset.state === state) return; // aria-live: announce changes only
    conn.dataset.state = state;
    conn.textContent = text;
  }

  const fmt = {
    dur(ns) {
      const s = ns / 1e9;
      if (s < 1) return Math.round(s * 1000) + " ms";
      if (s < 60) return s.toFixed(1) + " s";
      const m = Math.floor(s / 60);
      if (m < 60) return m + "m " + Math.floor(s % 60) + "s";
      const h = Math.floor(m / 60);
      return h < 48 ? h + "h " + (m % 60) + "m" : Math.floor(h / 24) + "d " + (h % 24) + "h";
    },
    us(us) { return us >= 1000 ? (us / 1000).toFixed(us >= 100000 ? 0 : 1) + " ms" : Math.round(us) + " µs"; },
    mib(b) { return b > 0 ? (b / 1048576).toFixed(1) + " MiB" : "—"; },
    pct(x) { return (100 * x).toFixed(x > 0 && x < 0.01 ? 2 : 1) + "%"; },
    ago(iso, now) { return fmt.dur(Math.max(0, now - Date.parse(iso)) * 1e6) + " ago"; },
    time(iso) { return new Date(iso).toLocaleTimeString(); },
  };

  function table(caption, heads, rows, cls) {
    const thead = el("thead", {}, el("tr", {}, ...heads.map((h) => el("th", { scope: "col" }, h))));
    return el("table", { className: cls || "" }, el("caption", {}, caption), thead, el("tbody", {}, ...rows));
  }

  function cell(v, cls) { return el("td", cls ? { className: cls } : {}, v); }

  function stat(label, value, warn) {
    return el("div", { className: warn ? "stat warn" : "stat" }, el("dt", {}, label), el("dd", {}, value));
  }

  // workerRows: one row per live worker, and one per slot that has none (it is restarting).
  function workerRows(p, now) {
    const slots = p.slots || [];
    const bySlot = new Map(slots.map((s) => [s.slot, s]));
    const rows = [];
    const seen = new Set();
    const reason = (s) => s && s.last_reason
      ? el("span", { title: s.last_reason }, s.last_reason, el("span", { className: "muted" }, " (" + fmt.ago(s.last_restart, now) + ")"))
      : el("span", { className: "muted" }, "—");
    for (const w of p.workers || []) {
      seen.add(w.slot);
      const s = bySlot.get(w.slot);
      rows.push(el("tr", { "data-slot": w.slot, "data-pid": w.pid, "data-state": w.state },
        cell(w.slot, "num"), cell(w.pid, "num"), cell(el("span", { className: "badge " + w.state }, w.state)),
        cell(w.in_flight, "num"), cell(w.served, "num"), cell(w.errors, "num"),
        cell(fmt.mib(w.rss_bytes), "num"), cell(fmt.dur(w.uptime_ns), "num"),
        cell(w.restarts, "num"), cell(reason(s), "reason")));
    }
    for (const s of slots) {
      if (seen.has(s.slot)) continue;
      rows.push(el("tr", { "data-slot": s.slot, "data-pid": "", "data-state": "restarting" },
        cell(s.slot, "num"), cell("—", "num"), cell(el("span", { className: "badge restarting" }, "restarting")),
        cell("—", "num"), cell("—", "num"), cell("—", "num"), cell("—", "num"), cell("—", "num"),
        cell(s.restarts, "num"), cell(reason(s), "reason")));
    }
    rows.sort((a, b) => a.dataset.slot - b.dataset.slot);
    return rows;
  }

  // Cells carry a class naming their figure: tests and scripts read them by it.
  function opRows(p) {
    return (p.ops || []).map((o) => el("tr", { "data-op": o.op },
      el("th", { scope: "row" }, o.op), cell(o.count, "num calls"), cell(o.errors, "num failed"),
      cell(o.count ? fmt.pct(o.errors / o.count) : "—", o.errors ? "num rate bad" : "num rate"),
      cell(fmt.us(o.p50_us), "num p50"), cell(fmt.us(o.p99_us), "num p99")));
  }

  function errorRows(p) {
    return (p.recent_errors || []).map((e) => el("tr", { "data-op": e.op, "data-category": e.category },
      cell(el("time", { dateTime: e.time }, fmt.time(e.time))), cell(e.op, "op"), cell(e.category, "category"),
      cell(e.type || "—", "type"), cell(e.message, "msg")));
  }

  // migration: the share of calls still made through legacy APIs (PoolStats.ByAPI: every API
  // but "current"), and the share of ops served by async handlers.
  function migration(p) {
    const apis = Object.entries(p.by_api || {});
    const total = apis.reduce((n, [, c]) => n + c.calls, 0);
    const legacy = apis.filter(([a]) => a !== "current").reduce((n, [, c]) => n + c.calls, 0);
    const asyncShare = (p.handlers && p.handlers.async_share) || 0;
    const meter = (label, v, text, id) => el("label", { className: "meter", "data-metric": id },
      el("span", {}, label), el("meter", { min: 0, max: 1, value: v }), el("span", { className: "value" }, text));
    const list = el("ul", { className: "apis" }, ...apis.sort((a, b) => b[1].calls - a[1].calls)
      .map(([a, c]) => el("li", { "data-api": a }, el("code", {}, a), ": " + c.calls + " calls" + (c.errors ? ", " + c.errors + " failed" : ""))));
    return el("div", { className: "migration" },
      meter("Legacy API share of calls", total ? legacy / total : 0,
        total ? fmt.pct(legacy / total) + " (" + legacy + " of " + total + ")" : "no calls yet", "legacy-share"),
      meter("Async handlers", asyncShare, fmt.pct(asyncShare) + " of ops", "async-share"),
      list);
  }

  function bridge(name, p, now) {
    // healthy: every slot ready (an autoscaling pool: MinSize ready; a slot it is adding is not a fault)
    const ready = p.healthy && !p.error;
    const health = el("span", { className: "badge " + (ready ? "ready" : "bad") }, ready ? "healthy" : "degraded");
    const head = el("h2", {}, name, " ", health);
    const stats = el("dl", { className: "stats" },
      stat("Workers ready", p.ready + " / " + p.size, !ready),
      stat("Queue depth", p.waiting, p.waiting > 0),
      stat("Oldest wait", p.waiting ? fmt.dur(p.oldest_wait_ns) : "—", p.oldest_wait_ns > 1e9),
      stat("Crashes", p.crashes, p.crashes > 0), stat("Recycles", p.recycles),
      stat("Retries", p.retries), stat("Overloaded", p.overloaded, p.overloaded > 0));
    const sc = p.scaling;
    if (sc && sc.enabled) {
      stats.append(stat("Autoscaling", sc.target + " of " + sc.min + "–" + sc.max + " (↑" + sc.ups + " ↓" + sc.downs + ")"
        + (sc.last ? ", last " + sc.last.direction + " " + fmt.ago(sc.last.at, now) : "")));
    }
    const parts = [head];
    if (p.error) parts.push(el("p", { className: "error", role: "alert" }, p.error));
    parts.push(stats,
      table("Workers", ["Slot", "PID", "State", "In flight", "Served", "Errors", "RSS", "Age", "Restarts", "Last restart"], workerRows(p, now), "workers"),
      table("Ops (latency measured in Go, queueing included)", ["Op", "Calls", "Errors", "Error rate", "p50", "p99"], opRows(p), "ops"),
      el("h3", {}, "Migration"), migration(p));
    const errs = errorRows(p);
    parts.push(errs.length ? table("Recent errors (newest first)", ["Time", "Op", "Category", "Type", "Message"], errs, "errors")
      : el("p", { className: "muted" }, "No failed calls recorded."));
    return el("section", { className: "bridge", "aria-label": "Bridge " + name, "data-bridge": name }, ...parts);
  }

  function render(st) {
    const now = Date.parse(st.time) || Date.now();
    const names = Object.keys(st.bridges || {}).sort();
    const sections = names.map((n) => bridge(n, st.bridges[n], now));
    main.replaceChildren(...(sections.length ? sections : [el("p", { className: "empty" }, "No bridges are running.")]));
    main.setAttribute("aria-busy", "false");
    updated.dateTime = st.time;
    updated.textContent = fmt.time(st.time);
  }

  function connect() {
    const es = new EventSource("events");
    es.onopen = () => setConn("live", "Live");
    es.addEventListener("status", (ev) => {
      lastMessage = Date.now();
      setConn("live", "Live");
      try { render(JSON.parse(ev.data)); } catch (e) { setConn("error", "Bad snapshot: " + e.message); }
    });
    es.onerror = () => {
      if (es.readyState !== EventSource.CLOSED) { setConn("reconnecting", "Reconnecting…"); return; }
      // Refused (a session that expired, a node that restarted): reload to log in again if
      // the page now needs it, else try again.
      setConn("offline", "Disconnected; retrying…");
      setTimeout(() => fetch("events", { method: "HEAD" }).then((r) => {
        if (r.status === 401) location.reload(); else connect();
      }, connect), 2000);
    };
  }

  setInterval(() => {
    if (lastMessage && Date.now() - lastMessage > 5000) setConn("stale", "No update for " + Math.round((Date.now() - lastMessage) / 1000) + " s");
  }, 1000);
  connect();
})();
