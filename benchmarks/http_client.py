"""Benchmark: the Table client's own CPU per request, azure-core's default session against ours.

    .venv/bin/python -m benchmarks.http_client [--requests 1000]

Starts its own Azurite, writes 100 rows, then times point reads, one-page queries and
single-entity batch writes through `AzureTable` with each transport, interleaved in rounds of
50 so that neither gains from going first. Prints wall time and this process's CPU per request
(Azurite's CPU is not included: it is the same for both).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from azure.data.tables import TableServiceClient

from devstack.azurite import Azurite
from shared.adapters.azure_table import AzureTable, service_client
from shared.adapters.table import Write

ROUND = 50
Op = Callable[[AzureTable, int], object]
OPS: dict[str, tuple[Op, int]] = {  # what, and its share of --requests
    "point read ($select)": (lambda t, i: t.get("p", f"r{i % 100:03d}", select=["n"]), 1),
    "query, one page of 100 rows": (lambda t, i: list(t.query("p", page_size=100)), 10),
    "batch of one upsert": (lambda t, i: t.write("p", [Write("upsert", "w", {"n": i})]), 1),
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000)
    n = parser.parse_args().requests
    with Azurite() as azurite:
        tables = {
            "azure-core's default session": AzureTable(
                TableServiceClient.from_connection_string(azurite.connection_string), "benchhttp"
            ),
            "LeanSession (the app's)": AzureTable(
                service_client(connection_string=azurite.connection_string), "benchhttp"
            ),
        }
        first = next(iter(tables.values()))
        first.create()
        first.write("p", [Write("upsert", f"r{i:03d}", {"a": "x" * 200, "n": i}) for i in range(100)])
        for what, (op, share) in OPS.items():
            count = max(ROUND, n // share)
            totals = {label: [0.0, 0.0] for label in tables}
            for table in tables.values():
                for i in range(10):
                    op(table, i)  # warm the connection pool
            for start in range(0, count, ROUND):
                for label, table in tables.items():
                    cpu, wall = time.process_time(), time.perf_counter()
                    for i in range(start, start + ROUND):
                        op(table, i)
                    totals[label][0] += time.process_time() - cpu
                    totals[label][1] += time.perf_counter() - wall
            print(what)
            for label, (cpu, wall) in totals.items():
                done = (count + ROUND - 1) // ROUND * ROUND
                wall_ms, cpu_ms = wall / done * 1000, cpu / done * 1000
                print(f"  {label:<30} wall {wall_ms:5.2f} ms   client CPU {cpu_ms:5.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
