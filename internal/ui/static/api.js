// The dashboard's client of godwit's REST API (docs/openapi.json): JSON
// requests with the user's token, and the live event stream.

export class APIError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export class API {
  constructor(token) {
    this.token = token || "";
  }

  headers(extra) {
    const h = { Accept: "application/json", ...extra };
    if (this.token) h.Authorization = "Bearer " + this.token;
    return h;
  }

  // request sends one call and returns its decoded reply; a failure is
  // an APIError carrying the controller's message.
  async request(method, path, body) {
    const init = { method, headers: this.headers() };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const resp = await fetch(path, init);
    const text = await resp.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = { message: text };
      }
    }
    if (!resp.ok) {
      const msg = (data && data.message) || `${method} ${path}: HTTP ${resp.status}`;
      throw new APIError(resp.status, data && data.code, msg);
    }
    return data;
  }

  get(path) { return this.request("GET", path); }
  post(path, body) { return this.request("POST", path, body === undefined ? {} : body); }
  del(path) { return this.request("DELETE", path); }

  // events follows GET /v1/events (server-sent events) until signal
  // aborts, calling onEvent with each api.Event. It reconnects after a
  // cut, resuming after the last ID it saw (Last-Event-ID), so nothing
  // is missed; onState hears "live" and "reconnecting".
  async events(onEvent, onState, signal) {
    let last = "";
    while (!signal.aborted) {
      try {
        const headers = this.headers({ Accept: "text/event-stream" });
        if (last) headers["Last-Event-ID"] = last;
        const resp = await fetch("/v1/events", { headers, signal });
        if (!resp.ok) throw new APIError(resp.status, "", `event stream: HTTP ${resp.status}`);
        onState("live");
        const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let end;
          while ((end = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, end);
            buf = buf.slice(end + 2);
            const ev = parseEvent(block);
            if (!ev) continue;
            if (ev.id) last = ev.id;
            onEvent(ev);
          }
        }
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof APIError && err.status === 401) {
          onState("unauthenticated");
          return;
        }
      }
      onState("reconnecting");
      await sleep(1000, signal);
    }
  }
}

// parseEvent reads one server-sent event block; comments (heartbeats)
// give null.
function parseEvent(block) {
  let data = "";
  for (const line of block.split("\n")) {
    if (line.startsWith("data:")) data += line.slice(5).trimStart();
  }
  if (!data) return null;
  try {
    return JSON.parse(data);
  } catch {
    return null;
  }
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => { clearTimeout(t); resolve(); }, { once: true });
  });
}
