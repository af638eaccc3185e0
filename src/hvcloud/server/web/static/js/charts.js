// Small charts as inline SVG, no library. Each chart is a <figure> with an SVG (role="img", <title>
// and <desc>) and a table with the same numbers, for screen readers and for anyone who wants figures.
// SVG nodes come from createElementNS; every value from the API lands as text (never markup).

import {h} from "./dom.js";

const NS = "http://www.w3.org/2000/svg";
let chartIds = 0;

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function pct(used, total) {
  return total > 0 ? Math.max(0, Math.min(100, (100 * used) / total)) : 0;
}

/** The band a percentage falls in: ok below 70, warn below 90, else high (colour and a word). */
export function level(percent) {
  return percent >= 90 ? "high" : percent >= 70 ? "warn" : "ok";
}

/**
 * Horizontal bars, used against total. bars: [{label, used, total, format(n) → text}].
 * Returns a <figure class="chart bars"> with the SVG and a table fallback.
 */
export function barChart({title, desc, bars}) {
  const id = `chart${++chartIds}`;
  const rowH = 34;
  const labelW = 150;
  const barW = 360;
  const width = labelW + barW + 70;
  const height = Math.max(1, bars.length) * rowH + 8;
  const svg = s("svg", {viewBox: `0 0 ${width} ${height}`, role: "img", "aria-labelledby": `${id}-t ${id}-d`,
                        class: "barchart", width, height},
    s("title", {id: `${id}-t`}, title),
    s("desc", {id: `${id}-d`}, desc || bars.map((b) =>
      `${b.label}: ${fmt(b, b.used)} used of ${fmt(b, b.total)} (${pct(b.used, b.total).toFixed(1)}%)`).join("; ")));
  bars.forEach((b, i) => {
    const y = 4 + i * rowH;
    const p = pct(b.used, b.total);
    svg.append(
      s("text", {x: 0, y: y + 17, class: "label"}, b.label),
      s("rect", {x: labelW, y: y + 4, width: barW, height: 18, rx: 3, class: "track"}),
      s("rect", {x: labelW, y: y + 4, width: (barW * p) / 100, height: 18, rx: 3, class: `fill ${level(p)}`,
                 "data-percent": p.toFixed(1)}),
      s("text", {x: labelW + barW + 6, y: y + 17, class: "value"}, `${p.toFixed(1)}%`),
      s("text", {x: labelW, y: y + 32, class: "sub"}, `${fmt(b, b.used)} of ${fmt(b, b.total)}`));
  });
  const table = h("table", {class: "chart-table"},
    h("caption", {}, title),
    h("thead", {}, h("tr", {}, h("th", {scope: "col"}, "Resource"), h("th", {scope: "col"}, "Used"),
                    h("th", {scope: "col"}, "Total"), h("th", {scope: "col"}, "Used %"))),
    h("tbody", {}, bars.map((b) => h("tr", {},
      h("th", {scope: "row"}, b.label), h("td", {}, fmt(b, b.used)), h("td", {}, fmt(b, b.total)),
      h("td", {}, `${pct(b.used, b.total).toFixed(1)}%`)))));
  return h("figure", {class: "chart bars"}, h("figcaption", {}, title), svg,
           h("details", {class: "chart-numbers"}, h("summary", {}, "Numbers"), table));
}

function fmt(bar, n) {
  return bar.format ? bar.format(n) : String(n);
}

/**
 * A time series of percentages (0–100). series: [{label, points: [[Date, percent]]}].
 * Returns a <figure class="chart line">; with fewer than two samples it says so.
 */
export function lineChart({title, desc, series, empty}) {
  const id = `chart${++chartIds}`;
  const width = 660;
  const height = 220;
  const left = 40;
  const right = 150;
  const top = 10;
  const bottom = 30;
  const times = series.flatMap((x) => x.points.map((p) => p[0].getTime()));
  const t0 = Math.min(...times);
  const t1 = Math.max(...times);
  const span = Math.max(1, t1 - t0);
  const px = (t) => left + ((t - t0) / span) * (width - left - right);
  const py = (v) => top + (1 - Math.max(0, Math.min(100, v)) / 100) * (height - top - bottom);
  const svg = s("svg", {viewBox: `0 0 ${width} ${height}`, role: "img", "aria-labelledby": `${id}-t ${id}-d`,
                        class: "linechart", width, height},
    s("title", {id: `${id}-t`}, title),
    s("desc", {id: `${id}-d`}, desc || series.map((x) => {
      const last = x.points[x.points.length - 1];
      return `${x.label}: ${last ? last[1].toFixed(1) + "% now" : "no samples"}`;
    }).join("; ")));
  for (const v of [0, 50, 100]) {
    svg.append(s("line", {x1: left, x2: width - right, y1: py(v), y2: py(v), class: "grid"}),
               s("text", {x: left - 6, y: py(v) + 4, class: "axis", "text-anchor": "end"}, `${v}%`));
  }
  if (times.length) {
    svg.append(s("text", {x: left, y: height - 8, class: "axis"}, new Date(t0).toLocaleTimeString()),
               s("text", {x: width - right, y: height - 8, class: "axis", "text-anchor": "end"},
                 new Date(t1).toLocaleTimeString()));
  }
  series.forEach((x, i) => {
    if (!x.points.length) return;
    const d = x.points.map((p, j) => `${j ? "L" : "M"}${px(p[0].getTime()).toFixed(1)},${py(p[1]).toFixed(1)}`).join(" ");
    const last = x.points[x.points.length - 1];
    svg.append(s("path", {d, class: `series s${i % 6}`}),
               s("circle", {cx: px(last[0].getTime()), cy: py(last[1]), r: 3, class: `dot s${i % 6}`}),
               s("text", {x: width - right + 8, y: top + 14 + i * 16, class: `legend s${i % 6}`},
                 `${x.label} ${last[1].toFixed(0)}%`));
  });
  const rows = [];
  const stamps = [...new Set(times)].sort((a, b) => a - b);
  for (const t of stamps) {
    rows.push(h("tr", {}, h("th", {scope: "row"}, new Date(t).toLocaleTimeString()),
      series.map((x) => {
        const p = x.points.find((q) => q[0].getTime() === t);
        return h("td", {}, p ? `${p[1].toFixed(1)}%` : "");
      })));
  }
  const table = h("table", {class: "chart-table"}, h("caption", {}, title),
    h("thead", {}, h("tr", {}, h("th", {scope: "col"}, "Time"), series.map((x) => h("th", {scope: "col"}, x.label)))),
    h("tbody", {}, rows));
  const note = stamps.length < 2 ? h("p", {class: "chart-empty"}, empty || "Collecting samples…") : null;
  return h("figure", {class: "chart line"}, h("figcaption", {}, title), note, svg,
           h("details", {class: "chart-numbers"}, h("summary", {}, "Numbers"), table));
}
