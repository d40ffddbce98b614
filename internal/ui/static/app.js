// godwit's dashboard: the cluster's hosts, VMs, intents and migrations,
// kept live by the event stream (GET /v1/events), and the actions the
// user's role allows. Every action is one call of the REST API, the same
// the CLI makes; the controller checks the role again.

import { API, APIError } from "./api.js";
import { passChart, fmtMiB, fmtRate } from "./chart.js";
import { h, patch, bar, fmtMiBs, fmtDuration, ago, badge, ask, field, select, num } from "./dom.js";

const TOKEN_KEY = "godwit-token";
const LIVE_MIGRATION = ["queued", "scheduling", "preparing", "waiting-for-link", "transferring", "switching-over", "finishing"];
const LIVE_INTENT = ["running", "cancelling", "awaiting-confirmation", "reverting"];
const SHOW_FINISHED = 8; // finished moves kept in view

const S = {
  api: null,
  version: null,
  who: null,
  hosts: [],
  vms: new Map(),
  migrations: new Map(),
  intents: new Map(),
  images: [],
  stream: "connecting",
  selected: null, // {kind: "migration"|"intent", id}
  abort: null,
  hostTimer: 0,
};

const $ = (id) => document.getElementById(id);
const isAdmin = () => S.who && S.who.role === "admin";

let pending = false;
function render() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    renderHeader();
    renderHosts();
    renderMoves();
    renderVMs();
    renderDetail();
  });
}

// ---- log in and out ----

async function boot() {
  S.version = await new API().get("/v1/version");
  $("login-form").addEventListener("submit", onLogin);
  $("logout").addEventListener("click", logout);
  $("create-vm").addEventListener("click", createVM);
  $("detail-close").addEventListener("click", () => { S.selected = null; render(); });
  $("dialog").addEventListener("close", () => $("dialog-body").replaceChildren());
  $("dash").addEventListener("click", onClick);
  if (!S.version.auth) return enter(new API(""));
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) return showLogin("");
  try {
    await enter(new API(token));
  } catch (err) {
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin(err.message);
  }
}

function showLogin(msg) {
  $("dash").hidden = true;
  $("login").hidden = false;
  $("logout").hidden = true;
  $("login-error").textContent = msg;
  $("token").focus();
}

async function onLogin(e) {
  e.preventDefault();
  const token = $("token").value.trim();
  try {
    await enter(new API(token));
    sessionStorage.setItem(TOKEN_KEY, token);
    $("token").value = "";
  } catch (err) {
    showLogin(err.message);
  }
}

function logout() {
  sessionStorage.removeItem(TOKEN_KEY);
  if (S.abort) S.abort.abort();
  clearInterval(S.hostTimer);
  S.who = null;
  S.api = null;
  S.selected = null;
  S.hosts = [];
  S.vms.clear();
  S.migrations.clear();
  S.intents.clear();
  for (const id of ["hosts", "migrations", "intents", "vms", "detail-body"]) $(id).replaceChildren();
  showLogin("");
}

// enter checks the token (GET /v1/whoami), loads the cluster and follows
// its events.
async function enter(api) {
  S.who = await api.get("/v1/whoami");
  S.api = api;
  $("login").hidden = true;
  $("dash").hidden = false;
  $("logout").hidden = !S.version.auth;
  await reload();
  S.abort = new AbortController();
  const mine = (f) => (x) => { if (S.api === api) f(x); };
  api.events(mine(onEvent), mine(onStream), S.abort.signal);
  if (isAdmin()) S.hostTimer = setInterval(loadHosts, 2000);
}

// ---- state ----

// reload reads everything again. Each reply is dropped if the user
// logged out (or in as someone else) meanwhile.
async function reload() {
  const api = S.api;
  const [vms, migs, intents, images] = await Promise.all([
    api.get("/v1/vms"), api.get("/v1/migrations"), api.get("/v1/intents"), api.get("/v1/images"),
  ]);
  if (S.api !== api) return;
  S.vms = new Map(vms.map((v) => [v.name, v]));
  S.migrations = new Map(migs.map((m) => [m.id, m]));
  S.intents = new Map(intents.map((i) => [i.id, i]));
  S.images = images;
  if (isAdmin()) await loadHosts();
  render();
}

async function loadHosts() {
  const api = S.api;
  try {
    const hosts = await api.get("/v1/hosts");
    if (S.api !== api) return;
    S.hosts = hosts;
    render();
  } catch (err) {
    if (S.api === api && err instanceof APIError && err.status === 401) logout();
  }
}

const maps = { vm: () => S.vms, migration: () => S.migrations, intent: () => S.intents };

function onEvent(ev) {
  if (ev.kind === "reset") {
    reload();
    return;
  }
  const m = maps[ev.kind] && maps[ev.kind]();
  if (!m) return;
  if (ev.action === "deleted") m.delete(ev.name);
  else m.set(ev.name, ev.object);
  render();
}

function onStream(state) {
  S.stream = state;
  if (state === "unauthenticated") logout();
  render();
}

// act runs one call and shows its error in a dialog.
async function act(fn) {
  try {
    await fn();
  } catch (err) {
    ask("That did not work", h("p", {}, err.message), "OK", async () => null);
  }
}

// ---- actions ----

// The page's buttons and rows carry what they act on in data-*
// attributes, and one listener dispatches their clicks with the state as
// it is now: the tables are patched in place as events arrive (patch),
// so a button is the same element from one event to the next and a
// click is never lost to a re-render.
const byHost = (el) => S.hosts.find((x) => x.name === el.closest("[data-host]").dataset.host);
const byVM = (el) => S.vms.get(el.closest("[data-vm]").dataset.vm);
const byMigration = (el) => S.migrations.get(el.closest("[data-migration]").dataset.migration);
const byIntent = (el) => S.intents.get(el.closest("[data-intent]").dataset.intent);

const actions = {
  drain: (el) => drain(byHost(el)),
  evacuate: (el) => evacuate(byHost(el)),
  disable: (el) => act(() => S.api.post(`/v1/hosts/${byHost(el).name}/disable`).then(loadHosts)),
  enable: (el) => act(() => S.api.post(`/v1/hosts/${byHost(el).name}/enable`).then(loadHosts)),
  migrate: (el) => migrate(byVM(el)),
  resize: (el) => resize(byVM(el)),
  stop: (el) => act(() => S.api.post(`/v1/vms/${byVM(el).name}/stop`, {})),
  start: (el) => act(() => S.api.post(`/v1/vms/${byVM(el).name}/start`, {})),
  delete: (el) => {
    const vm = byVM(el);
    confirmThen(`Delete ${vm.name}?`, "Its disk is deleted too.", "Delete", () => S.api.del(`/v1/vms/${vm.name}`));
  },
  complete: (el) => act(() => S.api.post(`/v1/migrations/${byMigration(el).id}/complete`)),
  abort: (el) => {
    const m = byMigration(el);
    confirmThen(`Abort the migration of ${m.vm}?`, `The VM stays on ${m.source}.`, "Abort", () => S.api.post(`/v1/migrations/${m.id}/abort`));
  },
  confirm: (el) => act(() => S.api.post(`/v1/intents/${byIntent(el).id}/confirm`, {})),
  revert: (el) => {
    const i = byIntent(el);
    const text = i.kind === "migrate" ? "It moves back, cold, to its old host (if that has room)." : "Its old size comes back (and its old host, if it moved).";
    confirmThen(`Revert the ${i.kind} of ${i.target}?`, text, "Revert", () => S.api.post(`/v1/intents/${i.id}/revert`, {}));
  },
  cancel: (el) => {
    const i = byIntent(el);
    confirmThen(`Cancel the ${i.kind} of ${i.target}?`, "No new operation starts; running ones finish.", "Cancel intent", () => S.api.post(`/v1/intents/${i.id}/cancel`, {}));
  },
};

function onClick(e) {
  const b = e.target.closest("#dash button[data-action]");
  if (b && actions[b.dataset.action]) {
    actions[b.dataset.action](b);
    return;
  }
  const row = e.target.closest("#migrations tr[data-migration], #intents tr[data-intent]");
  if (row) select_(row.dataset.migration ? "migration" : "intent", row.dataset.migration || row.dataset.intent);
}

// ---- header ----

function renderHeader() {
  const w = S.who;
  $("cluster").textContent = S.version ? `v${S.version.version} · ${S.version.store}` : "";
  $("who").replaceChildren(!w ? "" : h("span", {}, w.auth_disabled ? "no authentication (lab cluster)" : `${w.name} · ${w.role}${w.project ? " of " + w.project : ""}`));
  $("stream").className = "stream " + S.stream;
  $("stream").textContent = S.stream === "live" ? "live" : S.stream;
}

// ---- hosts ----

function renderHosts() {
  const box = $("hosts");
  if (!isAdmin()) {
    patch(box, h("p", { class: "muted" }, "Hosts are shown to admins."));
    return;
  }
  patch(box, ...S.hosts.map(hostCard));
}

function hostCard(host) {
  const up = host.state === "up";
  const actions = h("div", { class: "actions" },
    h("button", { data: { action: "drain" }, disabled: !up || null }, "Drain"),
    h("button", { data: { action: "evacuate" } }, "Evacuate"),
    host.enabled ? h("button", { data: { action: "disable" } }, "Disable") : h("button", { data: { action: "enable" } }, "Enable"));
  return h("div", { class: "card host", data: { host: host.name, state: host.state } },
    h("div", { class: "title" }, h("strong", {}, host.name), badge(host.state), host.enabled ? null : badge("disabled")),
    h("div", { class: "sub" }, [host.hypervisor, host.accelerator, host.qemu_version ? "QEMU " + host.qemu_version : ""].filter(Boolean).join(" · ")),
    host.state_reason ? h("div", { class: "reason" }, host.state_reason) : null,
    bar(host.allocated_cpus, host.cpus, `${host.allocated_cpus} / ${host.cpus} vCPU`),
    bar(host.allocated_memory_mib, host.memory_mib, `${fmtMiBs(host.allocated_memory_mib)} / ${fmtMiBs(host.memory_mib)}`),
    host.disk_mib ? bar(host.allocated_disk_mib, host.disk_mib, `${fmtMiBs(host.allocated_disk_mib)} / ${fmtMiBs(host.disk_mib)} disk`) : null,
    h("div", { class: "sub" }, `${host.vms} VM${host.vms === 1 ? "" : "s"} · heartbeat ${ago(host.last_heartbeat)}`),
    actions);
}

// planView shows a dry run's plan: each operation, where it goes, how,
// and the prediction.
function planView(plan, lead) {
  const ops = plan.operations || [];
  return h("div", { class: "plan" },
    h("p", {}, lead),
    ops.length === 0 ? h("p", { class: "muted" }, "Nothing to do.") :
      h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "VM"), h("th", {}, "operation"), h("th", {}, "to"), h("th", {}, "strategy"), h("th", {}, "predicted"), h("th", {}, "note"))),
        h("tbody", {}, ops.map((o) => h("tr", { data: { vm: o.vm } }, h("td", {}, o.vm), h("td", {}, o.kind), h("td", {}, o.destination || ""),
          h("td", {}, o.strategy || ""), h("td", {}, fmtDuration(o.predicted_ms)), h("td", {}, o.reason || ""))))),
    plan.predicted_ms ? h("p", {}, "Predicted total: " + fmtDuration(plan.predicted_ms)) : null,
    (plan.notes || []).map((n) => h("p", { class: "note" }, n)));
}

function drain(host) {
  const opts = h("div", {},
    field("On a failure", select("on_failure", [["", "the default"], ["continue", "continue"], ["stop", "stop"]], "")),
    field("Convergence policy", select("policy", [["", "auto"], ["pre-copy", "pre-copy"], ["auto-converge", "auto-converge"], ["post-copy", "post-copy"]], "")),
    field("Bandwidth cap per move, MB/s", h("input", { name: "bandwidth_mb_per_s", type: "number", min: "0", placeholder: "the driver's default" })));
  ask(`Drain ${host.name}`, h("div", {}, h("p", {}, `Move every VM off ${host.name} so it can be serviced; it takes no new VMs.`), opts), "Preview plan", async (f) => {
    const req = {
      on_failure: f.get("on_failure") || undefined, policy: f.get("policy") || undefined,
      bandwidth_mb_per_s: num(f, "bandwidth_mb_per_s") || undefined,
    };
    const plan = await S.api.post(`/v1/hosts/${host.name}/drain`, { ...req, dry_run: true });
    return {
      body: planView(plan, `The plan to drain ${host.name}:`), ok: "Drain now", action: async () => {
        await S.api.post(`/v1/hosts/${host.name}/drain`, req);
        return null;
      },
    };
  });
}

function evacuate(host) {
  const body = h("div", {},
    h("p", {}, `Rebuild every VM of ${host.name} elsewhere. Only for a host that is down: godwit asks for proof that it is (its lease expired), or your word below.`),
    field("", h("span", {}, h("input", { type: "checkbox", name: "host_is_down" }), " I have checked that the host is down (powered off or fenced)")),
    field("", h("span", {}, h("input", { type: "checkbox", name: "allow_data_loss" }), " Allow data loss (VMs on local disks start from their image)")));
  ask(`Evacuate ${host.name}`, body, "Preview plan", async (f) => {
    const req = { host_is_down: f.get("host_is_down") === "on", allow_data_loss: f.get("allow_data_loss") === "on" };
    const plan = await S.api.post(`/v1/hosts/${host.name}/evacuate`, { ...req, dry_run: true });
    return {
      body: planView(plan, `The plan to evacuate ${host.name}:`), ok: "Evacuate now", action: async () => {
        await S.api.post(`/v1/hosts/${host.name}/evacuate`, req);
        return null;
      },
    };
  });
}

// ---- moves: migrations and intents ----

function migrationPercent(m) {
  if (m.state === "completed") return 100;
  const p = m.progress || {};
  let f = 0;
  if (p.memory_total > 0) f = (p.memory_total - p.memory_remaining) / p.memory_total;
  else if (p.disk_total > 0) f = p.disk_transferred / p.disk_total;
  return Math.min(99, Math.max(0, Math.floor(100 * f)));
}

function sortMoves(list, live) {
  const active = list.filter((x) => live.includes(x.state)).sort((a, b) => b.created_at.localeCompare(a.created_at));
  const done = list.filter((x) => !live.includes(x.state)).sort((a, b) => (b.finished_at || b.updated_at).localeCompare(a.finished_at || a.updated_at));
  return active.concat(done.slice(0, SHOW_FINISHED));
}

function renderMoves() {
  const migs = sortMoves([...S.migrations.values()], LIVE_MIGRATION);
  const intents = sortMoves([...S.intents.values()], LIVE_INTENT);
  patch($("migrations"), migs.length === 0 ? h("p", { class: "muted" }, "No migration yet.") :
    h("table", { class: "moves" },
      h("thead", {}, h("tr", {}, ["VM", "kind", "from → to", "state", "progress", "throughput · dirty", "pass", "ETA", ""].map((t) => h("th", {}, t)))),
      h("tbody", {}, migs.map(migrationRow))));
  patch($("intents"), intents.length === 0 ? h("p", { class: "muted" }, "No intent yet.") :
    h("table", { class: "moves" },
      h("thead", {}, h("tr", {}, ["intent", "target", "state", "operations", "started", ""].map((t) => h("th", {}, t)))),
      h("tbody", {}, intents.map(intentRow))));
}

function migrationRow(m) {
  const p = m.progress || {};
  const live = LIVE_MIGRATION.includes(m.state);
  const pct = migrationPercent(m);
  const sel = S.selected && S.selected.id === m.id;
  return h("tr", { class: "row" + (sel ? " selected" : ""), data: { migration: m.id, state: m.state } },
    h("td", {}, m.vm),
    h("td", {}, m.kind, m.strategy ? h("small", {}, " " + m.strategy) : null),
    h("td", {}, `${m.source} → ${m.destination || "…"}`),
    h("td", {}, badge(m.state)),
    h("td", { class: "progress-cell" }, bar(pct, 100, pct + " %", "progress")),
    h("td", { class: "rates" }, live && p.throughput ? fmtRate(p.throughput) : "", live && p.dirty_rate ? h("small", {}, " · " + fmtRate(p.dirty_rate)) : null),
    h("td", {}, p.pass || ""),
    h("td", {}, live ? fmtDuration(p.eta_ms) : fmtDuration(p.total_time_ms)),
    h("td", { class: "actions" }, live && isAdmin() ? [
      h("button", { data: { action: "complete" }, title: "Force complete: pause the guest (or switch to post-copy) and finish now" }, "Complete"),
      h("button", { data: { action: "abort" } }, "Abort"),
    ] : null));
}

function intentRow(i) {
  const ops = i.operations || [];
  const done = ops.filter((o) => ["done", "skipped", "failed", "cancelled"].includes(o.state)).length;
  const live = LIVE_INTENT.includes(i.state);
  const mine = isAdmin() || i.kind === "resize" || i.kind === "rebuild";
  const mayCancel = mine && (i.state === "running" || i.state === "cancelling");
  const held = mine && i.state === "awaiting-confirmation";
  const sel = S.selected && S.selected.id === i.id;
  return h("tr", { class: "row" + (sel ? " selected" : ""), data: { intent: i.id, state: i.state } },
    h("td", {}, i.kind), h("td", {}, i.target), h("td", {}, badge(i.state)),
    h("td", { class: "progress-cell" }, bar(done, ops.length, `${done} / ${ops.length}`, "progress")),
    h("td", {}, ago(i.created_at)),
    h("td", { class: "actions" }, mayCancel ? h("button", { data: { action: "cancel" } }, "Cancel") : null,
      held ? [h("button", { data: { action: "confirm" } }, "Confirm"), h("button", { data: { action: "revert" } }, "Revert")] : null));
}

function select_(kind, id) {
  S.selected = { kind, id };
  render();
}

function confirmThen(title, text, label, call) {
  ask(title, h("p", {}, text), label, async () => { await call(); return null; });
}

// ---- the detail panel ----

function renderDetail() {
  const panel = $("detail");
  const sel = S.selected;
  const obj = sel && (sel.kind === "migration" ? S.migrations.get(sel.id) : S.intents.get(sel.id));
  panel.hidden = !obj;
  if (!obj) return;
  patch($("detail-body"), sel.kind === "migration" ? migrationDetail(obj) : intentDetail(obj));
}

function kv(pairs) {
  return h("dl", { class: "kv" }, pairs.filter(([, v]) => v !== "" && v !== undefined && v !== null).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function migrationDetail(m) {
  const p = m.progress || {};
  const c = m.convergence;
  return h("div", {},
    h("h3", {}, `${m.kind} migration of ${m.vm}`),
    kv([["state", badge(m.state)], ["from → to", `${m.source} → ${m.destination || "…"}`], ["strategy", m.strategy || ""],
      ["encrypted", m.encrypted ? "yes" : "no"], ["reason", m.reason || ""],
      ["memory", p.memory_total ? `${fmtMiB(p.memory_total - p.memory_remaining)} of ${fmtMiB(p.memory_total)} (${fmtMiB(p.memory_transferred)} sent)` : ""],
      ["disk", p.disk_total ? `${fmtMiB(p.disk_transferred)} of ${fmtMiB(p.disk_total)}` : ""],
      ["throughput", p.throughput ? fmtRate(p.throughput) : ""], ["dirty rate", p.dirty_rate ? fmtRate(p.dirty_rate) : ""],
      ["expected downtime", p.expected_downtime_ms ? fmtDuration(p.expected_downtime_ms) : ""],
      ["downtime", p.downtime_ms ? fmtDuration(p.downtime_ms) : ""], ["total time", p.total_time_ms ? fmtDuration(p.total_time_ms) : ""]]),
    c ? h("div", { class: "engine" }, h("h4", {}, "Convergence engine"),
      kv([["policy", c.policy], ["running", c.strategy + (c.throttle ? ` (vCPUs throttled ${c.throttle} %)` : "")],
        ["dirty rate measured", `${fmtRate(c.dirty_rate)}${c.dirty_rate_source ? " by " + c.dirty_rate_source : ""}`],
        ["bandwidth", fmtRate(c.bandwidth)], ["prediction", c.prediction || ""], ["predicted time", c.predicted_ms ? fmtDuration(c.predicted_ms) : ""],
        ["post-copy allowed", c.post_copy_allowed ? "yes" : "no"]])) : null,
    h("h4", {}, "Per pass"), passChart(m.passes),
    (m.decisions || []).length ? [h("h4", {}, "Decisions"), h("ul", { class: "decisions" }, m.decisions.map((d) => h("li", {}, h("strong", {}, d.action), " — ", d.reason, h("small", {}, " " + ago(d.at)))))] : null,
    h("h4", {}, "Phases"), h("ol", { class: "phases" }, (m.phases || []).map((ph) => h("li", {}, badge(ph.state), h("small", {}, " " + new Date(ph.at).toLocaleTimeString())))));
}

function intentDetail(i) {
  return h("div", {},
    h("h3", {}, `${i.kind} ${i.target}`),
    kv([["state", badge(i.state)], ["reason", i.reason || ""], ["predicted", i.predicted_ms ? fmtDuration(i.predicted_ms) : ""], ["started", ago(i.created_at)]]),
    planView(i, "Operations:"));
}

// ---- VMs ----

function renderVMs() {
  const vms = [...S.vms.values()].sort((a, b) => a.name.localeCompare(b.name));
  patch($("vms"), vms.length === 0 ? h("p", { class: "muted" }, "No VM yet.") :
    h("table", { class: "vms" },
      h("thead", {}, h("tr", {}, ["name", "project", "state", "host", "vCPUs", "memory", "disk", "pool", "addresses", ""].map((t) => h("th", {}, t)))),
      h("tbody", {}, vms.map(vmRow))));
}

function vmRow(vm) {
  const running = vm.state === "running";
  const addrs = (vm.ports || []).map((p) => p.ip).filter(Boolean).join(", ");
  return h("tr", { data: { vm: vm.name, state: vm.state } },
    h("td", {}, h("strong", {}, vm.name)), h("td", {}, vm.project), h("td", {}, badge(vm.state), vm.state_reason ? h("small", { class: "reason" }, " " + vm.state_reason) : null),
    h("td", { class: "host" }, vm.host || ""), h("td", {}, vm.flavor.vcpus), h("td", {}, fmtMiBs(vm.flavor.memory_mib)),
    h("td", {}, vm.flavor.disk_mib ? fmtMiBs(vm.flavor.disk_mib) : ""), h("td", {}, vm.pool), h("td", {}, addrs),
    h("td", { class: "actions" },
      isAdmin() ? h("button", { data: { action: "migrate" }, disabled: !vm.host || null }, "Migrate") : null,
      h("button", { data: { action: "resize" } }, "Resize"),
      running ? h("button", { data: { action: "stop" } }, "Stop") : h("button", { data: { action: "start" } }, "Start"),
      h("button", { data: { action: "delete" }, class: "danger" }, "Delete")));
}

function migrate(vm) {
  const hosts = S.hosts.filter((x) => x.state === "up" && x.enabled && x.name !== vm.host);
  const body = h("div", {},
    field("Destination", select("to", [["", "let the scheduler choose"], ...hosts.map((x) => [x.name, x.name])], "")),
    field("Kind", select("kind", [["", "live if it can, else cold"], ["live", "live"], ["cold", "cold"]], "")),
    field("Convergence policy", select("policy", [["", "auto (godwit's engine)"], ["pre-copy", "pre-copy"], ["auto-converge", "auto-converge"], ["post-copy", "post-copy"]], "")),
    field("Bandwidth cap, MB/s", h("input", { name: "bandwidth_mb_per_s", type: "number", min: "0", placeholder: "the driver's default" })),
    field("Max downtime, ms", h("input", { name: "max_downtime_ms", type: "number", min: "0", placeholder: "the default" })));
  ask(`Migrate ${vm.name} from ${vm.host}`, body, "Migrate", async (f) => {
    const m = await S.api.post(`/v1/vms/${vm.name}/migrate`, {
      to: f.get("to") || undefined, kind: f.get("kind") || undefined, policy: f.get("policy") || undefined,
      bandwidth_mb_per_s: num(f, "bandwidth_mb_per_s") || undefined, max_downtime_ms: num(f, "max_downtime_ms") || undefined,
    });
    S.migrations.set(m.id, m);
    select_("migration", m.id);
    return null;
  });
}

function resize(vm) {
  const body = h("div", {},
    field("vCPUs", h("input", { name: "vcpus", type: "number", min: "1", value: vm.flavor.vcpus })),
    field("Memory, MiB", h("input", { name: "memory_mib", type: "number", min: "1", value: vm.flavor.memory_mib })),
    field("Disk, MiB", h("input", { name: "disk_mib", type: "number", min: "0", value: vm.flavor.disk_mib || 0 }), "disks only grow"),
    field("", h("span", {}, h("input", { type: "checkbox", name: "allow_restart" }), " Allow a restart when it cannot change in place")),
    field("", h("span", {}, h("input", { type: "checkbox", name: "allow_move" }), " Allow a move when its host has no room")));
  ask(`Resize ${vm.name}`, body, "Preview plan", async (f) => {
    const req = {
      vcpus: num(f, "vcpus") !== vm.flavor.vcpus ? num(f, "vcpus") : undefined,
      memory_mib: num(f, "memory_mib") !== vm.flavor.memory_mib ? num(f, "memory_mib") : undefined,
      disk_mib: num(f, "disk_mib") !== (vm.flavor.disk_mib || 0) ? num(f, "disk_mib") : undefined,
      allow_restart: f.get("allow_restart") === "on", allow_move: f.get("allow_move") === "on",
    };
    const plan = await S.api.post(`/v1/vms/${vm.name}/resize`, { ...req, dry_run: true });
    return {
      body: planView(plan, `The plan to resize ${vm.name}:`), ok: "Resize now", action: async () => {
        await S.api.post(`/v1/vms/${vm.name}/resize`, req);
        return null;
      },
    };
  });
}

function createVM() {
  const project = isAdmin() ? h("input", { name: "project", value: "default", required: true })
    : h("input", { name: "project", value: S.who.project, readonly: true });
  const body = h("div", {},
    field("Name", h("input", { name: "name", required: true, pattern: "[a-z0-9]([a-z0-9-]*[a-z0-9])?", placeholder: "web-1" })),
    field("Project", project),
    field("Image", select("image", S.images.map((i) => [i.name, i.name]), S.images.length ? S.images[0].name : "")),
    field("vCPUs", h("input", { name: "vcpus", type: "number", min: "1", value: "1" })),
    field("Memory, MiB", h("input", { name: "memory_mib", type: "number", min: "16", value: "256" })),
    field("Disk, MiB", h("input", { name: "disk_mib", type: "number", min: "0", value: "0" }), "0: no disk"),
    field("Pool", select("pool", [["local", "local"], ["shared", "shared"]], "local")));
  ask("Create a VM", body, "Create", async (f) => {
    const vm = await S.api.post("/v1/vms", {
      name: f.get("name"), project: f.get("project"), image: f.get("image"), pool: f.get("pool"),
      flavor: { vcpus: num(f, "vcpus"), memory_mib: num(f, "memory_mib"), disk_mib: num(f, "disk_mib") },
    });
    S.vms.set(vm.name, vm);
    render();
    return null;
  });
}

boot().catch((err) => showLogin("The controller did not answer: " + err.message));
