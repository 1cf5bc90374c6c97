// The ETL view: polls the JSON routes next to this page and redraws; no framework, no build step.
"use strict";

const POLL_MS = 2000;
// Inside Airflow's frame (sandboxed: no top navigation, no dialogs) links stay in the frame; on a
// page of its own, a job links to its task's "AIS ETL job" tab in Airflow.
const IN_FRAME = window.top !== window;

function taskLink(rec, ...text) {
  return h("a", { href: IN_FRAME ? rec.view : rec.airflow_view, class: "job-task" }, ...text);
}

// Who runs a job: its task (a link to the task's job view), or the user's process (CLI, Python API).
function holderCell(rec) {
  if (rec.task_id) {
    return [taskLink(rec, `${rec.dag_id} / ${rec.task_id}`, rec.map_index >= 0 ? ` [${rec.map_index}]` : ""),
      h("div", { class: "meta" }, rec.run_id)];
  }
  return [h("span", { class: "job-holder" }, rec.holder || "?"), h("div", { class: "meta" }, `${rec.src || ""} → ${rec.dst || ""}`)];
}

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function size(n) {
  if (n === null || n === undefined) return "-";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return i === 0 ? `${n.toFixed(0)} B` : `${n.toFixed(1)} ${units[i]}`;
}

function when(epoch) {
  return epoch ? new Date(epoch * 1000).toLocaleString() : "";
}

function badge(state) { return h("span", { class: `badge ${state}`, "data-state": state }, state); }

async function getJson(url) {
  const r = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!r.ok) throw new Error(`${r.status} ${r.statusText}: ${(await r.text()).slice(0, 300)}`);
  return r.json();
}

async function postJson(url, body) {
  const r = await fetch(url, {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(body),
  });
  if (!r.ok) throw new Error(`${r.status}: ${(await r.text()).slice(0, 300)}`);
  return r.json();
}

function setStatus(text) { document.getElementById("status").textContent = text; }

// ----------------------------------------------------------------------------- pieces
function targetsTable(etl) {
  if (!etl.targets.length) {  // a stopped or aborted ETL: its last pods' logs are kept until it starts
    return h("p", { class: "meta" }, "no pods ",
      h("button", { class: "show-last-logs", onclick: () => showLogs(etl, null) }, "last pods' logs"));
  }
  return h("table", { class: "targets" },
    h("tr", {}, h("th", {}, "target"), h("th", {}, "pod"), h("th", {}, "health"), h("th", {}, "CPU"),
      h("th", {}, "memory"), h("th", {}, "")),
    etl.targets.map((t) => h("tr", { class: "target", "data-target": t.target_id, "data-healthy": String(!!t.healthy) },
      h("td", {}, t.target_id), h("td", {}, t.pod), h("td", {}, badge(t.status || "Unknown"), " ", t.detail || ""),
      h("td", {}, t.cpu === null || t.cpu === undefined ? "-" : `${(t.cpu * 100).toFixed(1)}%`),
      h("td", {}, size(t.mem)),
      h("td", {}, h("button", { class: "show-logs", onclick: () => showLogs(etl, t.target_id) }, "logs")))));
}

function jobRow(job) {
  const done = (job.objects || 0) + (job.skipped || 0) + (job.error_count || 0);
  const planned = job.planned_objects || 0;
  const eta = job.eta === null || job.eta === undefined ? "-" : `${job.eta}s`;
  return h("tr", { class: "job", "data-state": job.state, "data-done": done, "data-task": job.task_id, "data-id": job.id },
    h("td", {}, holderCell(job)),
    h("td", {}, badge(job.state), job.cause ? h("div", { class: "cause" }, job.cause) : null),
    h("td", {}, h("progress", { max: planned || 1, value: done }), " ",
      h("span", { class: "job-objects" }, `${done}/${planned}`), ` objects (${job.skipped || 0} skipped)`),
    h("td", {}, `${size(job.bytes_in)} in, ${size(job.bytes_out)} out`),
    h("td", {}, `${(job.rate_objects || 0).toFixed(1)} obj/s, ${size(job.rate_bytes)}/s`),
    h("td", {}, `ETA ${eta}`, h("div", { class: "meta" }, `elapsed ${job.elapsed}s`)),
    h("td", { class: "job-errors" }, String(job.error_count || 0)));
}

function jobsTable(jobs) {
  if (!jobs.length) return h("p", { class: "meta" }, "no jobs recorded");
  return h("table", { class: "jobs" },
    h("tr", {}, ["run by", "state", "progress", "bytes", "rate", "ETA", "errors"].map((x) => h("th", {}, x))),
    jobs.map(jobRow));
}

function errorsTable(job) {
  if (!job.errors || !job.errors.length) return null;
  return h("div", {}, h("h3", {}, `Failing objects (${job.error_count}, newest ${job.errors.length} shown)`),
    h("table", { class: "errors" }, h("tr", {}, h("th", {}, "object"), h("th", {}, "target"), h("th", {}, "error")),
      job.errors.map((e) => h("tr", {}, h("td", {}, e.object), h("td", {}, e.target), h("td", {}, e.error)))));
}

function abortsList(etl) {
  const items = [];
  if (etl.cause) items.push(h("li", {}, h("span", { class: "cause" }, etl.cause), " (last abort of this ETL)"));
  for (const a of etl.aborts || []) {
    items.push(h("li", {}, h("span", { class: "cause" }, a.cause || "aborted"), ` — ${when(a.updated)} `,
      a.task_id ? taskLink(a, `${a.dag_id} / ${a.task_id}`) : a.holder));
  }
  return items.length ? h("div", {}, h("h3", {}, "Aborts"), h("ul", { class: "aborts" }, items)) : null;
}

const canEdit = { value: false };
const lastError = { value: "" };

function lifecycleButtons(etl) {
  if (!canEdit.value) return null;
  const act = (action) => async () => {
    try { await postJson(`api/etls/${encodeURIComponent(etl.name)}/${action}`, { conn_id: etl.conn_id }); }
    catch (e) { lastError.value = `${action} ${etl.name} failed: ${e.message}`; }
    refresh();
  };
  return h("span", { class: "actions" },
    etl.state === "stopped" || etl.state === "aborted"
      ? h("button", { class: "start", onclick: act("start") }, "Start")
      : h("button", { class: "stop", onclick: act("stop") }, "Stop"));
}

function etlCard(etl, withJobs) {
  const stats = Object.entries(etl.stats || {}).map(([k, v]) => `${k} ${k.includes("bytes") ? size(v) : v}`).join(", ");
  return [
    h("h2", {}, etl.name, " ", h("span", { class: "etl-state" }, badge(etl.state)), " ", lifecycleButtons(etl)),
    h("div", { class: "meta" }, `${etl.kind} · ${etl.comm_type} · argument ${etl.arg_type || "-"} · `,
      `runtime ${etl.runtime || "-"} · ${etl.pods} pod(s) · ${etl.backend} backend, connection ${etl.conn_id}`),
    etl.cause ? h("div", { class: "cause" }, `cause: ${etl.cause}`) : null,
    etl.error ? h("div", { class: "cause" }, etl.error) : null,
    h("div", { class: "meta" }, `stats: ${stats || "none yet"}`),
    (etl.leases || []).length ? h("div", { class: "meta" }, `in use by: ${etl.leases.join("; ")}`) : null,
    h("h3", {}, "Targets"), targetsTable(etl),
    withJobs ? [h("h3", {}, "Jobs"), jobsTable(etl.jobs || [])] : null,
    withJobs ? abortsList(etl) : null,
  ];
}

// ----------------------------------------------------------------------------- logs (kept across redraws)
function logsBox(etl) {
  const id = `logs-${etl.conn_id}-${etl.name}`;
  let box = document.getElementById(id);
  if (!box) box = h("div", { id, class: "logs-box" });
  // logs shown for a stopped ETL are its last pods'; once it starts again they are stale
  if (box.dataset.state && box.dataset.state !== etl.state) {
    box.replaceChildren();
    delete box.dataset.state;
  }
  return box;
}

async function showLogs(etl, targetId) {
  const box = logsBox(etl);
  const q = new URLSearchParams({ conn_id: etl.conn_id });
  if (targetId) q.set("target_id", targetId);
  try {
    const data = await getJson(`api/etls/${encodeURIComponent(etl.name)}/logs?${q}`);
    box.dataset.state = etl.state;
    box.replaceChildren(...data.pods.map((p) => h("div", {},
      h("h3", {}, `Log of ${p.pod} (target ${p.target_id}), last lines `,
        h("button", { onclick: () => box.replaceChildren() }, "close")),
      h("pre", { class: "logs", "data-target": p.target_id }, p.logs || "(empty)"))));
  } catch (e) { box.replaceChildren(h("p", { class: "cause" }, `logs: ${e.message}`)); }
}

// ----------------------------------------------------------------------------- pages
function sectionFor(root, id, cls) {
  let s = document.getElementById(id);
  if (!s) { s = h("section", { id, class: cls }); root.append(s); }
  return s;
}

async function refreshEtls() {
  const data = await getJson("api/etls");
  canEdit.value = !!data.can_edit;
  const root = document.getElementById("connections");
  const seen = new Set();
  let count = 0;
  for (const conn of data.connections) {
    if (conn.error) {
      const id = `conn-${conn.conn_id}`;
      seen.add(id);
      sectionFor(root, id, "conn-error").replaceChildren(h("h2", {}, `connection ${conn.conn_id}`),
        h("p", { class: "cause" }, conn.error));
    }
    for (const etl of conn.etls) {
      const id = `etl-${conn.conn_id}-${etl.name}`;
      seen.add(id);
      count++;
      const s = sectionFor(root, id, "etl");
      s.setAttribute("data-etl", etl.name);
      s.replaceChildren(...etlCard(etl, true).flat().filter(Boolean), logsBox(etl));
    }
  }
  for (const s of [...root.children]) if (!seen.has(s.id)) s.remove();
  if (!count) sectionFor(root, "empty", "note").replaceChildren("No ETLs defined.");
  setStatus(`${count} ETL(s) · signed in as ${data.user}${data.can_edit ? " (can stop/start)" : " (read only)"} · ` +
    `${new Date().toLocaleTimeString()}${lastError.value ? ` · ${lastError.value}` : ""}`);
}

async function refreshTask() {
  const data = await getJson(`api/task${location.search}`);
  const root = document.getElementById("task");
  const params = new URLSearchParams(location.search);
  const head = h("div", { class: "meta" }, `${params.get("dag_id")} / ${params.get("run_id")} / ${params.get("task_id")}`,
    /^\d+$/.test(params.get("map_index") || "") ? ` [${params.get("map_index")}]` : "",
    ` · task ${data.task_state || "unknown"}`);
  const parts = [head];
  if (!data.task) parts.push(h("p", { class: "note" }, "This task has not recorded an AIS ETL (not a task of the provider, or it has not started)."));
  const job = data.job;
  if (job) {
    parts.push(h("section", { class: "job-card", "data-state": job.state },
      h("h2", {}, `Job on ETL ${job.etl} `, badge(job.state)),
      h("div", { class: "meta" }, `${job.src} → ${job.dst}${job.dry_run ? " (dry run)" : ""} · updated ${when(job.updated)}`),
      job.cause ? h("div", { class: "cause" }, `cause: ${job.cause}`) : null,
      jobsTable([job]), errorsTable(job),
      h("h3", {}, "Per target"),
      h("table", {}, h("tr", {}, ["target", "objects", "bytes in", "bytes out", "errors"].map((x) => h("th", {}, x))),
        Object.entries(job.targets || {}).map(([tid, t]) => h("tr", {}, h("td", {}, tid), h("td", {}, t.objects),
          h("td", {}, size(t.bytes_in)), h("td", {}, size(t.bytes_out)), h("td", {}, t.errors))))));
  } else if (data.task) parts.push(h("p", { class: "note" }, "No bucket job recorded by this task."));
  if (data.etl) {
    parts.push(h("section", { class: "etl", "data-etl": data.etl.name }, ...etlCard(data.etl, false).flat().filter(Boolean), logsBox(data.etl)));
  } else if (data.etl_error) parts.push(h("p", { class: "cause" }, data.etl_error));
  if (data.task && /^https?:/.test(data.task.dashboard || "")) {
    parts.push(h("p", {}, h("a", { href: data.task.dashboard, target: "_blank", rel: "noopener" }, "ETL dashboard")));
  }
  root.replaceChildren(...parts);
  setStatus(`updated ${new Date().toLocaleTimeString()}`);
}

async function refresh() {
  try {
    if (document.body.dataset.page === "task") await refreshTask();
    else await refreshEtls();
  } catch (e) { setStatus(`error: ${e.message}`); }
}

refresh();
setInterval(refresh, POLL_MS);
