import { type ReactNode, type RefObject, useId, useLayoutEffect, useRef, useState } from "react";

import { dayTicks, formatDay, linePath, type Series } from "../lib/analytics";
import { TableWrap } from "./TableWrap";

// Lines people can tell apart without colour: each has its colour (at least 4.9:1 on white),
// its marker's shape, and from the fifth on a hollow marker and a dashed line.
export const COLOURS = ["#0b5cad", "#c2410c", "#1a7f37", "#8250df", "#be185d", "#0e7490", "#a16207", "#57606a"];
const SHAPES = ["circle", "square", "diamond", "triangle"] as const;
const HEIGHT = 240;
const TOP = 12;
const BOTTOM = 30;
const RIGHT = 14;
const FALLBACK_WIDTH = 640; // before the frame is measured (and in tests, where nothing is)

export const styleOf = (index: number) => ({
  colour: COLOURS[index % COLOURS.length] ?? COLOURS[0]!,
  shape: SHAPES[index % SHAPES.length] ?? "circle",
  hollow: index % COLOURS.length >= SHAPES.length,
});

function Marker({ index, x, y, r, children }: { index: number; x: number; y: number; r: number; children?: ReactNode }) {
  const { colour, shape, hollow } = styleOf(index);
  const paint = { fill: hollow ? "#ffffff" : colour, stroke: colour, strokeWidth: hollow ? 2 : 1 };
  if (shape === "circle") return <circle cx={x} cy={y} r={r} {...paint}>{children}</circle>;
  if (shape === "square") return <rect x={x - r * 0.9} y={y - r * 0.9} width={r * 1.8} height={r * 1.8} {...paint}>{children}</rect>;
  const d =
    shape === "diamond"
      ? `M${x},${y - r * 1.25} L${x + r * 1.25},${y} L${x},${y + r * 1.25} L${x - r * 1.25},${y} Z`
      : `M${x},${y - r * 1.2} L${x + r * 1.15},${y + r * 0.9} L${x - r * 1.15},${y + r * 0.9} Z`;
  return <path d={d} {...paint}>{children}</path>;
}

/** The line's look in the legend: a stroke of it with its marker. */
function Swatch({ index }: { index: number }) {
  const { colour, hollow } = styleOf(index);
  return (
    <svg width="30" height="14" viewBox="0 0 30 14" aria-hidden="true" focusable="false" className="swatch">
      <line x1="1" y1="7" x2="29" y2="7" stroke={colour} strokeWidth="2.5" strokeDasharray={hollow ? "5 3" : undefined} />
      <Marker index={index} x={15} y={7} r={4} />
    </svg>
  );
}

/** The width the chart's frame has on screen, followed as it changes. */
function useWidth(): [RefObject<HTMLDivElement>, number] {
  const ref = useRef<HTMLDivElement>(null);
  const [width, setWidth] = useState(FALLBACK_WIDTH);
  useLayoutEffect(() => {
    const frame = ref.current;
    if (!frame) return;
    const measure = () => {
      const w = Math.floor(frame.clientWidth);
      if (w > 0) setWidth(w);
    };
    measure();
    if (typeof ResizeObserver === "undefined") return;
    const observer = new ResizeObserver(measure);
    observer.observe(frame);
    return () => observer.disconnect();
  }, []);
  return [ref, width];
}

interface Props {
  title: string;
  description?: ReactNode;
  /** The window's days (UTC, oldest first): one point per day and line. */
  days: readonly string[];
  series: readonly Series[];
  /** The y axis: its ticks, from 0 to the top. */
  ticks: readonly number[];
  format: (value: number) => string;
  /** The chart's accessible name (`chartSummary`). */
  summary: string;
}

/**
 * A line chart drawn in SVG at the width it is given: a line per series, a point per day, gaps
 * where a day has no value. An image named by a summary of it; "Show data table" opens the same
 * figures as a table (a day per row, a series per column).
 */
export function LineChart({ title, description, days, series, ticks, format, summary }: Props) {
  const id = useId().replace(/[^a-zA-Z0-9_-]/g, "");
  const [frame, width] = useWidth();
  const [open, setOpen] = useState(false);
  const top = ticks[ticks.length - 1] || 1;
  const labels = ticks.map((t) => format(t));
  const left = Math.max(...labels.map((l) => l.length), 2) * 6.6 + 14;
  const plot = { x: left, y: TOP, w: Math.max(40, width - left - RIGHT), h: HEIGHT - TOP - BOTTOM };
  const n = Math.max(1, days.length);
  const xOf = (i: number) => plot.x + (plot.w * (i + 0.5)) / n;
  const yOf = (v: number) => plot.y + plot.h - (plot.h * Math.min(v, top)) / top;
  const r = n > 45 ? 2.5 : n > 20 ? 3.2 : 4;
  const shownDays = dayTicks(days.length, Math.floor(plot.w / 64));
  const withData = days.map((_, i) => series.some((s) => s.values[i] != null));

  return (
    <section className="chart" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>{title}</h2>
      {description && <p className="muted small chart-description">{description}</p>}
      <div ref={frame} className="chart-frame">
        <svg role="img" aria-label={summary} width={width} height={HEIGHT} viewBox={`0 0 ${width} ${HEIGHT}`} className="chart-svg">
          {ticks.map((t, k) => (
            <g key={t} className="chart-grid">
              <line x1={plot.x} x2={plot.x + plot.w} y1={yOf(t)} y2={yOf(t)} className={t === 0 ? "chart-axis" : undefined} />
              <text x={plot.x - 6} y={yOf(t)} dy="0.32em" textAnchor="end">
                {labels[k]}
              </text>
            </g>
          ))}
          {shownDays.map((i) => (
            <text key={days[i]} x={xOf(i)} y={plot.y + plot.h + 18} textAnchor="middle" className="chart-day">
              {formatDay(days[i] ?? "")}
            </text>
          ))}
          {series.map((s, index) => {
            const { colour, hollow } = styleOf(index);
            const points = s.values.map((v, i) => (v == null ? null : { x: xOf(i), y: yOf(v) }));
            return (
              <g key={s.key} className="chart-series">
                <path d={linePath(points)} fill="none" stroke={colour} strokeWidth="2.25" strokeDasharray={hollow ? "6 4" : undefined} strokeLinejoin="round" />
                {points.map((p, i) =>
                  p ? (
                    <Marker key={days[i]} index={index} x={p.x} y={p.y} r={r}>
                      <title>{`${s.label}, ${formatDay(days[i] ?? "")}: ${format(s.values[i] ?? 0)}`}</title>
                    </Marker>
                  ) : null,
                )}
              </g>
            );
          })}
        </svg>
      </div>
      <ul className="legend">
        {series.map((s, index) => (
          <li key={s.key}>
            <Swatch index={index} />
            <span>{s.label}</span>
          </li>
        ))}
      </ul>
      <button type="button" className="link-button" aria-expanded={open} aria-controls={`${id}-data`} onClick={() => setOpen(!open)}>
        {open ? "Hide data table" : "Show data table"}
        <span className="visually-hidden"> for {title.toLowerCase()}</span>
      </button>
      <div id={`${id}-data`} hidden={!open}>
        {open && (
          <>
            <p className="muted small">Days without a value are left out.</p>
            <TableWrap label={`${title}: data table`}>
              <table aria-label={`${title}: data`} className="chart-data">
                <thead>
                  <tr>
                    <th scope="col">Day (UTC)</th>
                    {series.map((s) => (
                      <th scope="col" key={s.key}>
                        {s.label}
                      </th>
                    ))}
                  </tr>
                </thead>
                <tbody>
                  {days.map((day, i) =>
                    withData[i] ? (
                      <tr key={day}>
                        <th scope="row">{formatDay(day)}</th>
                        {series.map((s) => {
                          const v = s.values[i];
                          return <td key={s.key}>{v == null ? "—" : format(v)}</td>;
                        })}
                      </tr>
                    ) : null,
                  )}
                </tbody>
              </table>
            </TableWrap>
          </>
        )}
      </div>
    </section>
  );
}
