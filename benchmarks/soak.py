"""The liveness soak over many seeds: `python -m benchmarks.soak [--seeds 10] [--rate 0.02]`.

Prints, per seed, the occurrences, the faults that struck, the repairs they needed, and the five
counts that must be zero (stuck runs, wrong final states, duplicate Databricks starts per token,
missing or duplicate occurrences, runs of a non-overlapping job that ran at once, deliveries after
which the bounded pool held more than its slots, leases and entries left at the end).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from tests.soak import soak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first", type=int, default=1)
    parser.add_argument("--rate", type=float, default=0.02, help="probability of each fault per operation")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.CRITICAL)
    columns = [
        "seed",
        "occurrences",
        "faults struck",
        "re-sent by the watchdog",
        "put off",
        "stuck",
        "wrong",
        "dup starts",
        "missing/dup occ.",
        "overlapping",
        "pooled (waited)",
        "over capacity",
        "leaked",
        "event causes (runs)",
        "causes lost/doubled",
        "notices (tries refused)",
        "notices wrong",
        "batch points (wrong)",
        "s",
    ]
    print("| " + " | ".join(columns) + " |")
    print("|" + " --- |" * len(columns))
    failed = 0
    for seed in range(args.first, args.first + args.seeds):
        started = time.monotonic()
        r = soak(seed, args.rate)
        failed += not r.ok
        faults = ", ".join(f"{k} {v}" for k, v in sorted(r.faults.items()))
        cells = [
            seed,
            r.occurrences,
            f"{sum(r.faults.values())} ({faults})",
            r.repairs,
            r.deferrals,
            r.stuck,
            r.wrong_final_state,
            r.duplicate_starts,
            r.missing_or_duplicate_occurrences,
            r.overlapping_runs,
            f"{r.pooled_runs} ({r.waited_for_a_slot})",
            r.over_capacity,
            r.leaked,
            f"{r.event_causes} ({r.event_runs})",
            r.causes_lost_or_doubled,
            f"{r.notices} ({r.notice_tries_failed})",
            r.notices_wrong,
            f"{r.batch_points} ({r.batch_wrong})",
            f"{time.monotonic() - started:.1f}",
        ]
        print("| " + " | ".join(str(c) for c in cells) + " |")
        for problem in r.problems[:10]:
            print(f"  {problem}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
