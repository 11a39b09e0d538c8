// nocrud console: live pages without a build step. Server-sent events when the
// browser has them, polling every 4 s when it does not or the stream breaks.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]').content;

async function post(url, body) {
  const answer = await fetch(url, {
    method: "POST",
    headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf()},
    body: JSON.stringify(body || {}),
    credentials: "same-origin",
  });
  let data = {};
  try { data = await answer.json(); } catch (e) { data = {detail: answer.statusText}; }
  return {status: answer.status, data};
}

async function swap(element) {
  const answer = await fetch(element.dataset.fragment, {credentials: "same-origin"});
  if (answer.ok) element.innerHTML = await answer.text();
}

// Follow a stream; on failure (or without EventSource) poll instead.
function follow(url, handlers, poll) {
  let polling = null;
  const startPolling = () => { if (!polling) { poll(); polling = setInterval(poll, 4000); } };
  if (!window.EventSource || window.NOCRUD_POLL) { startPolling(); return; }
  const source = new EventSource(url);
  let failures = 0;
  for (const [name, handler] of Object.entries(handlers)) {
    source.addEventListener(name, (event) => { failures = 0; handler(JSON.parse(event.data), source); });
  }
  source.onerror = () => {
    failures += 1;
    if (failures >= 3) { source.close(); startPolling(); }
  };
}

// ---- runs page ------------------------------------------------------------
const runs = document.getElementById("runs");
if (runs) {
  follow(runs.dataset.live, {changed: () => swap(runs)}, () => swap(runs));
}

// ---- run page -------------------------------------------------------------
const run = document.getElementById("run");
if (run) {
  const id = run.dataset.run;
  const log = document.getElementById("log");
  const flows = document.getElementById("flows");
  const search = document.getElementById("log-search");
  let lastSeq = 0;
  let ended = run.dataset.active !== "yes";

  const addLines = (lines) => {
    const needle = search.value.toLowerCase();
    for (const line of lines) {
      if (line.seq <= lastSeq) continue;
      lastSeq = line.seq;
      const div = document.createElement("div");
      div.className = "line";
      div.innerHTML = line.html;
      if (needle && !div.textContent.toLowerCase().includes(needle)) div.hidden = true;
      log.appendChild(div);
    }
  };
  const showState = (state) => {
    const r = state.run;
    const badge = document.getElementById("run-status");
    badge.textContent = r.status;
    badge.className = "badge " + r.status;
    document.getElementById("run-counts").textContent =
      `${r.total} flow(s): ${r.passed} passed, ${r.failed} failed, ${r.errors} error, ${r.skipped} skipped`;
    for (const f of state.flows) {
      const row = flows.querySelector(`tr[data-flow="${CSS.escape(f.name)}"]`);
      if (!row) { swap(flows); break; }
      if (row.dataset.status !== f.status) {
        row.dataset.status = f.status;
        row.className = "flow status-" + f.status;
        const cell = row.querySelector(".badge");
        cell.textContent = f.status;
        cell.className = "badge " + f.status;
      }
    }
    const active = r.status === "queued" || r.status === "running";
    document.getElementById("cancel").hidden = !state.cancellable;
    document.getElementById("rerun-all").hidden = active;
    document.getElementById("rerun-failed").hidden = active || !(r.failed || r.errors);
    if (!active && !ended) { ended = true; setTimeout(() => location.reload(), 800); }
  };
  const poll = async () => {
    const [state, lines] = await Promise.all([
      fetch(`/api/runs/${id}`).then((a) => a.json()),
      fetch(`/api/runs/${id}/log?after=${lastSeq}`).then((a) => a.json()),
    ]);
    addLines(lines.lines);
    showState(state);
  };
  follow(`/api/runs/${id}/stream`, {
    log: addLines,
    state: showState,
    end: (data, source) => source.close(),
  }, poll);

  search.addEventListener("input", () => {
    const needle = search.value.toLowerCase();
    for (const line of log.children) line.hidden = !!needle && !line.textContent.toLowerCase().includes(needle);
  });
  const act = async (url) => {
    const message = document.getElementById("action-message");
    message.textContent = "";
    const {status, data} = await post(url);
    if (status === 201) { location.href = data.url; return; }
    if (status === 202) { message.textContent = data.detail || "cancelling"; return; }
    message.innerHTML = "";
    message.textContent = data.detail || `HTTP ${status}`;
    if (data.url) {
      const link = document.createElement("a");
      link.href = data.url; link.textContent = " open the active run";
      message.appendChild(link);
    }
  };
  document.getElementById("cancel").addEventListener("click", () => act(`/api/runs/${id}/cancel`));
  document.getElementById("rerun-failed").addEventListener("click", () => act(`/api/runs/${id}/rerun`));
  document.getElementById("rerun-all").addEventListener("click", () => act(`/api/runs/${id}/rerun?failed_only=false`));
}

// ---- start form -----------------------------------------------------------
const form = document.getElementById("start");
if (form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const p of form.querySelectorAll(".field-error")) p.textContent = "";
    const message = document.getElementById("form-message");
    message.textContent = "";
    const value = (name) => form.elements[name].value.trim();
    const body = {
      flows: value("flows").split(/[\s,]+/).filter(Boolean),
      keyword: value("keyword"),
      tags: value("tags"),
      crud: form.elements.crud.checked,
      parallel: Number(value("parallel") || "1"),
      strategy: value("strategy"),
    };
    const {status, data} = await post("/api/runs", body);
    if (status === 201) { location.href = data.url; return; }
    if (status === 422 && data.errors) {
      for (const [field, text] of Object.entries(data.errors)) {
        const slot = form.querySelector(`.field-error[data-field="${field}"]`);
        if (slot) slot.textContent = text; else message.textContent += `${field}: ${text} `;
      }
      return;
    }
    message.textContent = data.detail || `HTTP ${status}`;
    if (data.url) {
      const link = document.createElement("a");
      link.href = data.url; link.id = "active-run-link"; link.textContent = " open the active run";
      message.appendChild(link);
    }
  });
}
