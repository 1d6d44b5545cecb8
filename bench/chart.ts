import type { BenchMethod } from "./fixtures.js";
import type { LoadShape } from "./h2load.js";
import type { Cell } from "./results.js";
import type { SystemConfig } from "./systems.js";

const COLORS = ["#9e9e9e", "#e07b39", "#2f6db5", "#5aa05a", "#8e5bb5", "#c44e8a", "#2bb0b0", "#b5a02b"];
const PANEL_W = 560;
const PANEL_H = 260;
const MARGIN = { left: 70, top: 40, bottom: 40, right: 20 };

/**
 * A bar chart of median requests/s, p99 latency and requests per CPU-second
 * per configuration, as SVG text: one panel per figure and load shape,
 * methods along the x axis.
 */
export function renderChart(
  cells: readonly Cell[],
  configs: readonly SystemConfig[],
  methods: readonly BenchMethod[],
  shapes: readonly LoadShape[],
  title: string,
): string {
  const metrics = [
    { name: "requests/s (higher is better)", pick: (c: Cell) => c.medians?.requestsPerSecond, digits: 0 },
    { name: "p99 latency, ms (lower is better)", pick: (c: Cell) => c.medians?.p99Ms, digits: 1 },
    { name: "requests per CPU-second (higher is better)", pick: (c: Cell) => c.medians?.requestsPerCpuSecond, digits: 0 },
  ];
  const legendH = 30 + 18 * Math.ceil(configs.length / 3);
  const width = PANEL_W * shapes.length;
  const height = legendH + PANEL_H * metrics.length + 10;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="18" font-size="14" font-weight="bold">${escape(title)}</text>`,
  ];
  configs.forEach((config, i) => {
    const x = 10 + (i % 3) * Math.floor((width - 20) / 3);
    const y = 32 + Math.floor(i / 3) * 18;
    parts.push(`<rect x="${x}" y="${y}" width="12" height="12" fill="${color(i)}"/>`);
    parts.push(`<text x="${x + 16}" y="${y + 10}">${escape(config.label)}</text>`);
  });
  metrics.forEach((metric, row) => {
    shapes.forEach((shape, col) => {
      const x0 = col * PANEL_W;
      const y0 = legendH + row * PANEL_H;
      const value = (config: SystemConfig, method: BenchMethod): number | undefined => {
        const cell = cells.find((c) => c.config === config.name && c.method === method && c.shape === shape.name);
        return cell === undefined ? undefined : metric.pick(cell);
      };
      const all = methods.flatMap((m) => configs.map((c) => value(c, m) ?? 0)).filter(Number.isFinite);
      const max = niceMax(Math.max(1e-9, ...all));
      const plotW = PANEL_W - MARGIN.left - MARGIN.right;
      const plotH = PANEL_H - MARGIN.top - MARGIN.bottom;
      const left = x0 + MARGIN.left;
      const bottom = y0 + MARGIN.top + plotH;
      parts.push(`<text x="${left}" y="${y0 + 22}" font-size="12" font-weight="bold">${escape(`${metric.name} — ${shape.label}`)}</text>`);
      for (let t = 0; t <= 4; t++) {
        const y = bottom - (plotH * t) / 4;
        parts.push(`<line x1="${left}" y1="${y}" x2="${left + plotW}" y2="${y}" stroke="#ddd"/>`);
        parts.push(`<text x="${left - 6}" y="${y + 4}" text-anchor="end">${tick((max * t) / 4)}</text>`);
      }
      const groupW = plotW / methods.length;
      const barW = Math.min(28, (groupW - 16) / configs.length);
      methods.forEach((method, g) => {
        const gx = left + g * groupW + (groupW - barW * configs.length) / 2;
        parts.push(`<text x="${left + g * groupW + groupW / 2}" y="${bottom + 16}" text-anchor="middle">${method}</text>`);
        configs.forEach((config, i) => {
          const v = value(config, method);
          if (v === undefined || !Number.isFinite(v)) return;
          const h = (plotH * v) / max;
          const x = gx + i * barW;
          parts.push(
            `<rect x="${x.toFixed(1)}" y="${(bottom - h).toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${h.toFixed(1)}" fill="${color(i)}"><title>${escape(`${config.label}, ${method}: ${v.toFixed(metric.digits)}`)}</title></rect>`,
          );
          parts.push(
            `<text x="${(x + barW / 2 - 1).toFixed(1)}" y="${(bottom - h - 3).toFixed(1)}" font-size="8" text-anchor="middle">${v.toFixed(metric.digits)}</text>`,
          );
        });
      });
      parts.push(`<line x1="${left}" y1="${bottom}" x2="${left + plotW}" y2="${bottom}" stroke="#333"/>`);
    });
  });
  parts.push("</svg>");
  return `${parts.join("\n")}\n`;
}

function color(i: number): string {
  return COLORS[i % COLORS.length] ?? "#000";
}

function niceMax(value: number): number {
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * magnitude >= value) return step * magnitude;
  return 10 * magnitude;
}

function tick(value: number): string {
  return value >= 1000 ? `${Math.round(value / 10) / 100}k` : String(Math.round(value * 100) / 100);
}

function escape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
