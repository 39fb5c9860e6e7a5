// Rendering a page for the tests: at a path, among some routes, with a fresh query client (no
// retries) and the status region every page reports to.
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render } from "@testing-library/react";
import type { ReactNode } from "react";
import { MemoryRouter, Routes } from "react-router-dom";

import { StatusProvider } from "../components/Status";

export function renderAt(path: string, routes: ReactNode) {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <QueryClientProvider client={client}>
      <MemoryRouter initialEntries={[path]}>
        <StatusProvider>
          <Routes>{routes}</Routes>
        </StatusProvider>
      </MemoryRouter>
    </QueryClientProvider>,
  );
}
