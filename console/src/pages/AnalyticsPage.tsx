import { keepPreviousData, useQuery } from "@tanstack/react-query";
import type { ReactNode } from "react";
import { Link, useSearchParams } from "react-router-dom";

import { api, call } from "../api/client";
import type { Analytics, AnalyticsGroup, GroupBy } from "../api/types";
import { ErrorAlert } from "../components/ErrorAlert";
import { Field } from "../components/Field";
import { LineChart } from "../components/LineChart";
import { TableWrap } from "../components/TableWrap";
import {
  chartSummary,
  controlsQuery,
  daysOf,
  durationP50,
  durationTicks,
  failures,
  type Figures,
  formatCount,
  formatPercent,
  formatRange,
  formatSeconds,
  GROUPINGS,
  groupingOf,
  groupName,
  isGroupBy,
  jobTypeLabel,
  MAX_ROWS,
  MAX_SERIES,
  mostFailing,
  outcomesInWords,
  RATE_TICKS,
  readControls,
  seriesOf,
  slowest,
  successRate,
  windowLabel,
  windowOptions,
} from "../lib/analytics";

/** The headline figures of the whole window, each a term and its value. */
function Headline({ total }: { total: Figures }) {
  const figures: [string, string][] = [
    ["Runs", formatCount(total.runs)],
    ["Success rate", formatPercent(total.success_rate)],
    ["Retry rate", formatPercent(total.retry_rate)],
    ["Duration p50", formatSeconds(total.duration_p50_s)],
    ["Duration p95", formatSeconds(total.duration_p95_s)],
    ["Queue wait p50", formatSeconds(total.queue_wait_p50_s)],
    ["Queue wait p95", formatSeconds(total.queue_wait_p95_s)],
    ["Fire lag p95", formatSeconds(total.fire_lag_p95_s)],
    ["Deadline misses", formatCount(total.deadline_misses)],
  ];
  return (
    <section aria-labelledby="headline-heading">
      <h2 id="headline-heading">Totals</h2>
      <dl className="totals figures">
        {figures.map(([term, value]) => (
          <div key={term}>
            <dt>{term}</dt>
            <dd>{value}</dd>
          </div>
        ))}
      </dl>
      <p className="muted small">
        {outcomesInWords(total)}. The success rate counts runs that succeeded, failed or timed out; the retry rate,
        durations, waits and lag count runs that started. Percentiles are within 2%.
      </p>
    </section>
  );
}

/** A group in a ranking's row header: a job links to its page, with its type (and tenant when there are several). */
function GroupCell({ group, groupBy, tenants }: { group: AnalyticsGroup; groupBy: GroupBy; tenants: number }) {
  const name = groupName(group, groupBy);
  if (groupBy !== "job") return <>{name}</>;
  const about = [jobTypeLabel(group.job_type), tenants > 1 ? group.tenant : null].filter(Boolean).join(" · ");
  return (
    <>
      <Link to={`/jobs/${encodeURIComponent(group.key)}`}>{name}</Link>
      {about && <div className="muted small">{about}</div>}
    </>
  );
}

function Ranking({
  title,
  intro,
  empty,
  rows,
  groupBy,
  tenants,
  columns,
}: {
  title: string;
  intro: string;
  empty: string;
  rows: AnalyticsGroup[];
  groupBy: GroupBy;
  tenants: number;
  columns: [string, (g: AnalyticsGroup) => ReactNode][];
}) {
  const id = `${title.toLowerCase().replace(/\s+/g, "-")}-heading`;
  return (
    <section aria-labelledby={id} className="ranking">
      <h2 id={id}>{title}</h2>
      <p className="muted small">{intro}</p>
      {rows.length === 0 ? (
        <p className="muted">{empty}</p>
      ) : (
        <TableWrap label={`${title}: table`}>
          <table aria-label={title}>
            <thead>
              <tr>
                <th scope="col">{groupingOf(groupBy).label}</th>
                {columns.map(([heading]) => (
                  <th scope="col" key={heading}>
                    {heading}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {rows.map((group) => (
                <tr key={group.key}>
                  <th scope="row" className="name">
                    <GroupCell group={group} groupBy={groupBy} tenants={tenants} />
                  </th>
                  {columns.map(([heading, value]) => (
                    <td key={heading} className="nowrap">
                      {value(group)}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}
    </section>
  );
}

function Report({ data }: { data: Analytics }) {
  const groupBy = data.group_by;
  const { label, plural } = groupingOf(groupBy);
  const days = daysOf(data.first, data.last);
  const groups = data.groups;
  const tenants = data.tenants.length;
  const rates = seriesOf(groups, days, successRate, groupBy);
  const durations = seriesOf(groups, days, durationP50, groupBy);
  const durationMax = Math.max(0, ...durations.flatMap((s) => s.values.map((v) => v ?? 0)));
  const summary = { days, plural, total: groups.length };
  return (
    <>
      <Headline total={data.total} />
      {groups.length > MAX_SERIES && (
        <p className="note">
          The charts show the {MAX_SERIES} {plural} with the most runs; {groups.length - MAX_SERIES} more had runs in this
          window (the tables below rank them all).
        </p>
      )}
      <div className="charts">
        <LineChart
          title="Success rate by day"
          description={`Per ${label.toLowerCase()}: runs that succeeded out of those that succeeded, failed or timed out. A gap is a day without such runs.`}
          days={days}
          series={rates}
          ticks={RATE_TICKS}
          format={formatPercent}
          summary={chartSummary({ ...summary, title: "Success rate by day", series: rates, format: formatPercent, extreme: "lowest" })}
        />
        <LineChart
          title="Duration p50 by day"
          description={`Per ${label.toLowerCase()}: the median time from first start to end of the runs that started. A gap is a day without such runs.`}
          days={days}
          series={durations}
          ticks={durationTicks(durationMax)}
          format={formatSeconds}
          summary={chartSummary({ ...summary, title: "Duration p50 by day", series: durations, format: formatSeconds, extreme: "highest" })}
        />
      </div>
      <div className="rankings">
        <Ranking
          title="Slowest"
          intro={`Up to ${MAX_ROWS} ${plural}, those whose runs took longest (95th percentile of duration) first.`}
          empty="No run started in this window."
          rows={slowest(groups)}
          groupBy={groupBy}
          tenants={tenants}
          columns={[
            ["Runs", (g) => formatCount(g.runs)],
            ["Duration p50", (g) => formatSeconds(g.duration_p50_s)],
            ["Duration p95", (g) => formatSeconds(g.duration_p95_s)],
          ]}
        />
        <Ranking
          title="Most failing"
          intro={`Up to ${MAX_ROWS} ${plural}, those with the most failures (runs that failed or timed out) first, then the lowest success rate.`}
          empty="No run failed or timed out in this window."
          rows={mostFailing(groups)}
          groupBy={groupBy}
          tenants={tenants}
          columns={[
            ["Runs", (g) => formatCount(g.runs)],
            [
              "Failures",
              (g) => (
                <>
                  {formatCount(failures(g))}
                  {g.timed_out > 0 && <div className="muted small">{formatCount(g.timed_out)} timed out</div>}
                </>
              ),
            ],
            ["Success rate", (g) => formatPercent(g.success_rate)],
          ]}
        />
      </div>
    </>
  );
}

function Empty({ window }: { window: string }) {
  return (
    <div className="empty">
      <p>
        <strong>No runs ended in this window ({windowLabel(window).toLowerCase()}).</strong>
      </p>
      <p className="muted">
        A run is counted here within a minute of its end. Choose a longer window, or <Link to="/">see your jobs</Link>{" "}
        and run one now.
      </p>
    </div>
  );
}

export function AnalyticsPage() {
  const [params, setParams] = useSearchParams();
  const { window, groupBy, ignored } = readControls(params);
  const report = useQuery({
    queryKey: ["analytics", window, groupBy],
    queryFn: () => call(api.GET("/api/analytics", { params: { query: controlsQuery(window, groupBy) } })),
    placeholderData: keepPreviousData,
  });
  const choose = (next: { window?: string; groupBy?: GroupBy }) =>
    setParams(controlsQuery(next.window ?? window, next.groupBy ?? groupBy), { replace: true });
  const data = report.data;
  const tenants = data?.tenants ?? [];

  return (
    <>
      <h1>Analytics</h1>
      <p className="muted">
        How runs that ended went, by {groupingOf(groupBy).label.toLowerCase()} and day by day. Days are UTC days; the window ends
        today (so far).
      </p>
      <div className="filters">
        <Field label="Window">
          {(p) => (
            <select {...p} value={window} onChange={(e) => choose({ window: e.target.value })}>
              {windowOptions(window).map((w) => (
                <option key={w.value} value={w.value}>
                  {w.label}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Group by">
          {(p) => (
            <select
              {...p}
              value={groupBy}
              onChange={(e) => {
                if (isGroupBy(e.target.value)) choose({ groupBy: e.target.value });
              }}
            >
              {GROUPINGS.map((g) => (
                <option key={g.value} value={g.value}>
                  {g.label}
                </option>
              ))}
            </select>
          )}
        </Field>
      </div>
      {ignored.length > 0 && (
        <p className="note">
          The link asks for {ignored.join(" and ")}, which the console does not know: showing the{" "}
          {windowLabel(window).toLowerCase()} by {groupingOf(groupBy).label.toLowerCase()} instead.
        </p>
      )}
      {report.isError && <ErrorAlert error={report.error} onRetry={() => void report.refetch()} />}
      {report.isPending && <p>Loading…</p>}
      {data && (
        <div aria-busy={report.isPlaceholderData}>
          <p className="muted small">
            {report.isPlaceholderData ? "Updating… " : ""}
            Runs that ended {data.first === data.last ? "on " : ""}
            {formatRange(data.first, data.last)} (UTC){tenants.length > 0 ? `, tenant${tenants.length > 1 ? "s" : ""} ${tenants.join(", ")}` : ""}.
          </p>
          {data.total.runs === 0 ? <Empty window={data.window} /> : <Report data={data} />}
        </div>
      )}
    </>
  );
}
