"""The liveness soak (tests/soak.py): a few hundred occurrences under every kind of fault, seeded.

`python -m benchmarks.soak --seeds 20` runs more seeds and prints the figures.
"""

from __future__ import annotations

import pytest

from tests.soak import soak


@pytest.mark.parametrize(
    ("seed", "rate"),
    [
        pytest.param(1, 0.02, id="seed-1"),
        pytest.param(2, 0.02, id="seed-2"),
        pytest.param(3, 0.05, id="seed-3-storm"),
    ],
)
def test_every_run_ends_as_it_should_under_faults(seed: int, rate: float) -> None:
    report = soak(seed, rate)
    assert report.occurrences > 250
    assert sum(report.faults.values()) > 200  # the faults struck
    assert report.repairs + report.deferrals > 0
    assert report.waited_for_a_slot > 10  # the bounded pool was contended
    assert report.event_causes == 48 and report.event_runs > 12  # files folded, keys retried
    assert report.ok, "\n".join(report.problems[:20])
    assert (
        report.stuck,
        report.wrong_final_state,
        report.duplicate_starts,
        report.missing_or_duplicate_occurrences,
        report.overlapping_runs,
        report.over_capacity,
        report.leaked,
        report.causes_lost_or_doubled,
        report.notices_wrong,
        report.batch_wrong,
    ) == (0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    assert report.batch_points == 30
    assert report.notices > 400 and report.notice_tries_failed > 50  # the destination refused, retries won
