// The per-pass chart of a live migration: for each memory pass, the
// memory that remained at its start (bars, left axis) and the guest's
// dirty rate in it (line, right axis). A pre-copy that converges shows
// bars falling; one that does not shows the line at or above the link's
// throughput (dashed).

const NS = "http://www.w3.org/2000/svg";

function el(name, attrs, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

const MiB = 1 << 20;

// passChart returns an <svg> of passes (api.PassStat[]), width × height.
export function passChart(passes, width = 520, height = 200) {
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img" });
  const pad = { l: 52, r: 56, t: 14, b: 28 };
  const w = width - pad.l - pad.r;
  const h = height - pad.t - pad.b;
  if (!passes || passes.length === 0) {
    svg.append(el("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "muted" }, "no pass yet"));
    return svg;
  }
  const maxRem = Math.max(...passes.map((p) => p.memory_remaining), 1);
  const maxRate = Math.max(...passes.map((p) => Math.max(p.dirty_rate, p.throughput || 0)), 1);
  const n = passes.length;
  const slot = w / n;
  const bw = Math.max(2, Math.min(40, slot * 0.7));
  const y = (v, max) => pad.t + h - (v / max) * h;

  // Axes and their scales.
  svg.append(el("line", { x1: pad.l, y1: pad.t + h, x2: pad.l + w, y2: pad.t + h, class: "axis" }));
  svg.append(el("text", { x: pad.l - 6, y: pad.t + 8, "text-anchor": "end", class: "tick" }, fmtMiB(maxRem)));
  svg.append(el("text", { x: pad.l - 6, y: pad.t + h, "text-anchor": "end", class: "tick" }, "0"));
  svg.append(el("text", { x: pad.l + w + 6, y: pad.t + 8, class: "tick rate" }, fmtRate(maxRate)));
  svg.append(el("text", { x: pad.l + w / 2, y: height - 6, "text-anchor": "middle", class: "tick" }, "pass"));

  const pts = [];
  passes.forEach((p, i) => {
    const cx = pad.l + slot * i + slot / 2;
    const top = y(p.memory_remaining, maxRem);
    const bar = el("rect", { x: cx - bw / 2, y: top, width: bw, height: pad.t + h - top, class: "bar-rem" });
    bar.append(el("title", {}, `pass ${p.pass}: ${fmtMiB(p.memory_remaining)} remaining, dirty ${fmtRate(p.dirty_rate)}`));
    svg.append(bar);
    if (n <= 20 || i % Math.ceil(n / 20) === 0) {
      svg.append(el("text", { x: cx, y: pad.t + h + 14, "text-anchor": "middle", class: "tick" }, String(p.pass)));
    }
    pts.push(`${cx},${y(p.dirty_rate, maxRate)}`);
  });
  svg.append(el("polyline", { points: pts.join(" "), class: "line-dirty" }));
  passes.forEach((p, i) => {
    svg.append(el("circle", { cx: pad.l + slot * i + slot / 2, cy: y(p.dirty_rate, maxRate), r: 3, class: "dot-dirty" }));
  });
  const last = passes[n - 1];
  if (last.throughput > 0) {
    const ty = y(last.throughput, maxRate);
    svg.append(el("line", { x1: pad.l, y1: ty, x2: pad.l + w, y2: ty, class: "line-bw" }));
  }
  const legend = el("g", { class: "legend" });
  legend.append(el("rect", { x: pad.l + 4, y: 2, width: 10, height: 8, class: "bar-rem" }));
  legend.append(el("text", { x: pad.l + 18, y: 10, class: "tick" }, "remaining"));
  legend.append(el("line", { x1: pad.l + 90, y1: 6, x2: pad.l + 104, y2: 6, class: "line-dirty" }));
  legend.append(el("text", { x: pad.l + 108, y: 10, class: "tick" }, "dirty rate"));
  legend.append(el("line", { x1: pad.l + 176, y1: 6, x2: pad.l + 190, y2: 6, class: "line-bw" }));
  legend.append(el("text", { x: pad.l + 194, y: 10, class: "tick" }, "throughput"));
  svg.append(legend);
  return svg;
}

export function fmtMiB(bytes) {
  const mib = bytes / MiB;
  if (mib >= 1024) return (mib / 1024).toFixed(1) + " GiB";
  if (mib >= 10) return Math.round(mib) + " MiB";
  return mib.toFixed(1) + " MiB";
}

export function fmtRate(bytesPerS) {
  const mb = bytesPerS / 1e6;
  if (mb >= 1000) return (mb / 1000).toFixed(2) + " GB/s";
  if (mb >= 10) return Math.round(mb) + " MB/s";
  return mb.toFixed(1) + " MB/s";
}
