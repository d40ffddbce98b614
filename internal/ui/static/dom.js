// Small DOM helpers: building elements, formatting, and the one dialog
// every action uses.

// h builds an element: h("td", {class: "x", onclick: f}, "text", child).
// Attributes starting with "on" are listeners, "data" an object of
// data-* attributes; null and false children are skipped.
export function h(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "data") for (const [dk, dv] of Object.entries(v)) e.dataset[dk] = dv;
    else if (k === "class") e.className = v;
    else if (k === "value") e.value = v;
    else if (k === "checked") e.checked = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

// patch makes el's children look like children, changing the elements
// already there in place (their attributes, text and children, by
// position) and adding or removing only what differs. An element keeps
// its identity, focus and hover across renders; inputs keep what the
// user typed. Listeners are not carried over: the page delegates its
// clicks (app.js, onClick).
export function patch(el, ...children) {
  const fresh = document.createElement(el.nodeName);
  for (const c of children.flat(Infinity)) if (c !== null && c !== undefined && c !== false) fresh.append(c);
  morphChildren(el, fresh);
}

function morphChildren(old, fresh) {
  const oc = [...old.childNodes];
  const fc = [...fresh.childNodes];
  fc.forEach((f, i) => {
    if (i < oc.length) morph(oc[i], f);
    else old.append(f);
  });
  for (let i = fc.length; i < oc.length; i++) oc[i].remove();
}

function morph(old, fresh) {
  if (old.nodeType !== fresh.nodeType || old.nodeName !== fresh.nodeName) {
    old.replaceWith(fresh);
    return;
  }
  if (old.nodeType !== Node.ELEMENT_NODE) {
    if (old.nodeValue !== fresh.nodeValue) old.nodeValue = fresh.nodeValue;
    return;
  }
  for (const a of [...old.attributes]) if (!fresh.hasAttribute(a.name)) old.removeAttribute(a.name);
  for (const a of fresh.attributes) {
    if (old.getAttribute(a.name) === a.value) continue;
    // Through the CSSOM: the page's CSP refuses style attributes set as
    // markup.
    if (a.name === "style") old.style.cssText = fresh.style.cssText;
    else old.setAttribute(a.name, a.value);
  }
  if (old.nodeName === "INPUT" || old.nodeName === "SELECT" || old.nodeName === "TEXTAREA") return;
  morphChildren(old, fresh);
}

// bar is a capacity or progress bar: used of total, its label beside.
export function bar(used, total, label, cls) {
  const pct = total > 0 ? Math.min(100, Math.max(0, (100 * used) / total)) : 0;
  const fill = h("div", { class: "fill" });
  fill.style.width = pct.toFixed(1) + "%";
  const level = pct >= 90 ? " high" : pct >= 70 ? " mid" : "";
  return h("div", { class: "meter" + (cls ? " " + cls : "") + level, data: { percent: Math.round(pct) } },
    h("div", { class: "track" }, fill), h("span", { class: "label" }, label));
}

export function fmtMiBs(mib) {
  if (mib >= 1024) return (mib / 1024).toFixed(mib % 1024 ? 1 : 0) + " GiB";
  return mib + " MiB";
}

export function fmtDuration(ms) {
  if (ms === undefined || ms === null || ms < 0) return "";
  if (ms < 1000) return Math.round(ms) + " ms";
  const s = ms / 1000;
  if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + " s";
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function ago(iso) {
  if (!iso || iso.startsWith("0001")) return "";
  return fmtDuration(Date.now() - Date.parse(iso)) + " ago";
}

export function badge(state) {
  return h("span", { class: "badge s-" + String(state).replace(/[^a-z-]/g, "") }, state);
}

// The one dialog. ask opens it with a title, a body, an OK label and an
// action; the action's error is shown in the dialog, which stays open.
// The action may return a new {body, ok, action} to ask again (a plan,
// then its confirmation); a falsy return closes the dialog.
export function ask(title, body, okLabel, action) {
  const dlg = document.getElementById("dialog");
  const form = document.getElementById("dialog-form");
  const ok = document.getElementById("dialog-ok");
  const err = document.getElementById("dialog-error");
  const show = (b, label, act) => {
    document.getElementById("dialog-title").textContent = title;
    document.getElementById("dialog-body").replaceChildren(b);
    ok.textContent = label;
    ok.disabled = false;
    err.textContent = "";
    form.onsubmit = async (e) => {
      e.preventDefault();
      if (e.submitter && e.submitter.value === "cancel") {
        dlg.close();
        return;
      }
      ok.disabled = true;
      err.textContent = "";
      try {
        const next = await act(new FormData(form));
        if (next) show(next.body, next.ok, next.action);
        else dlg.close();
      } catch (x) {
        err.textContent = x.message;
        ok.disabled = false;
      }
    };
  };
  show(body, okLabel, action);
  if (!dlg.open) dlg.showModal();
}

// field is a labelled input of a dialog's form.
export function field(label, input, hint) {
  return h("label", { class: "field" }, h("span", {}, label), input, hint ? h("small", {}, hint) : null);
}

export function select(name, options, value) {
  return h("select", { name }, options.map(([v, label]) => h("option", { value: v, selected: v === value ? true : null }, label)));
}

export function num(form, name) {
  const v = form.get(name);
  return v === null || v === "" ? 0 : Number(v);
}
