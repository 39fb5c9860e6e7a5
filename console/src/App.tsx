import { useQuery, useQueryClient } from "@tanstack/react-query";
import { Component, type ErrorInfo, type ReactNode, useEffect, useState } from "react";
import { Link, NavLink, Route, Routes } from "react-router-dom";

import { api, call, setTenant } from "./api/client";
import { ErrorAlert } from "./components/ErrorAlert";
import { StatusProvider } from "./components/Status";
import { AnalyticsPage } from "./pages/AnalyticsPage";
import { BatchesPage } from "./pages/BatchesPage";
import { BatchPage } from "./pages/BatchPage";
import { JobPage } from "./pages/JobPage";
import { JobsPage } from "./pages/JobsPage";
import { NewJobPage } from "./pages/NewJobPage";
import { PoolsPage } from "./pages/PoolsPage";
import { QueuePage } from "./pages/QueuePage";
import { RunPage } from "./pages/RunPage";
import { TemplatePage } from "./pages/TemplatePage";
import { TemplatesPage } from "./pages/TemplatesPage";

class ErrorBoundary extends Component<{ children: ReactNode }, { error: unknown }> {
  state = { error: null as unknown };
  static getDerivedStateFromError(error: unknown) {
    return { error };
  }
  componentDidCatch(error: unknown, info: ErrorInfo) {
    console.error(error, info.componentStack);
  }
  render() {
    if (this.state.error)
      return (
        <div role="alert" className="alert">
          <p>Something went wrong on this page: {String(this.state.error)}</p>
          <button type="button" onClick={() => window.location.reload()}>
            Reload
          </button>
        </div>
      );
    return this.props.children;
  }
}

function NotFound() {
  return (
    <>
      <h1>Page not found</h1>
      <p>
        <Link to="/">Back to Jobs</Link>
      </p>
    </>
  );
}

export function App() {
  const me = useQuery({ queryKey: ["me"], queryFn: () => call(api.GET("/api/me")), staleTime: Infinity });
  const tenants = me.data?.tenants ?? [];
  const choose = me.data && (tenants.length > 1 || me.data.admin);
  const [tenant, chooseTenant] = useState<string>("");
  const queries = useQueryClient();
  useEffect(() => {
    const first = tenants[0];
    if (choose && !tenant && first) chooseTenant(first);
  }, [choose, tenant, tenants]);
  setTenant(choose ? tenant || null : null);
  const switchTenant = (next: string) => {
    // Another tenant's answers must never show: forget every cached answer but who the user is.
    queries.removeQueries({ predicate: (query) => query.queryKey[0] !== "me" });
    chooseTenant(next);
  };
  const ready = me.isSuccess && (!choose || tenant !== "");
  return (
    <StatusProvider>
      <header className="top">
        <nav aria-label="Main">
          <span className="brand">ML scheduler</span>
          <NavLink to="/" end>
            Jobs
          </NavLink>
          <NavLink to="/new">Schedule a job</NavLink>
          <NavLink to="/templates">Templates</NavLink>
          <NavLink to="/batches">Batches</NavLink>
          <NavLink to="/queue">Queue</NavLink>
          <NavLink to="/pools">Pools</NavLink>
          <NavLink to="/analytics">Analytics</NavLink>
        </nav>
        <div className="who">
          {choose && (
            <>
              <label htmlFor="tenant">Tenant</label>
              <select id="tenant" value={tenant} onChange={(e) => switchTenant(e.target.value)}>
                {tenants.map((t) => (
                  <option key={t} value={t}>
                    {t}
                  </option>
                ))}
              </select>
            </>
          )}
          {me.data && <span className="user">{me.data.actor.name}</span>}
        </div>
      </header>
      <main>
        <ErrorBoundary>
          {me.isError && <ErrorAlert error={me.error} onRetry={() => void me.refetch()} />}
          {me.isPending && <p>Loading…</p>}
          {ready && (
            <Routes key={tenant}>
              <Route path="/" element={<JobsPage />} />
              <Route path="/new" element={<NewJobPage />} />
              <Route path="/jobs/:jobId" element={<JobPage />} />
              <Route path="/jobs/:jobId/runs/:runId" element={<RunPage />} />
              <Route path="/templates" element={<TemplatesPage />} />
              <Route path="/templates/:name" element={<TemplatePage />} />
              <Route path="/batches" element={<BatchesPage />} />
              <Route path="/batches/:batchId" element={<BatchPage />} />
              <Route path="/queue" element={<QueuePage />} />
              <Route path="/pools" element={<PoolsPage />} />
              <Route path="/analytics" element={<AnalyticsPage />} />
              <Route path="*" element={<NotFound />} />
            </Routes>
          )}
        </ErrorBoundary>
      </main>
    </StatusProvider>
  );
}
