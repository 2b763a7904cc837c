"""Chunk execution on the driver's clock: interpolation, stale points and merge modes."""

import numpy as np
import pytest

from so101_driver.trajectory import MergeMode, Trajectory, TrajectoryExecutor

FPS = 30.0
DT = 1.0 / FPS


def chunk(stamp, values, joints=6):
    """A chunk whose point k is due at stamp + k/FPS, every joint at values[k]."""
    values = np.asarray(values, dtype=float)
    return Trajectory(stamp + np.arange(len(values)) * DT, np.repeat(values[:, None], joints, axis=1))


def test_sample_interpolates_and_holds_the_ends():
    trajectory = chunk(1.0, [0.0, 1.0, 3.0])
    assert trajectory.sample(0.5)[0] == 0.0
    assert trajectory.sample(1.0 + DT / 2)[0] == pytest.approx(0.5)
    assert trajectory.sample(1.0 + 1.5 * DT)[0] == pytest.approx(2.0)
    assert trajectory.sample(5.0)[0] == 3.0


def test_points_due_before_arrival_are_skipped():
    executor = TrajectoryExecutor(MergeMode.REPLACE)
    # Observation at t=10, chunk arrives 0.1 s later: points 0..3 are past (3 = 0.1 s exactly).
    skipped = executor.submit(chunk(10.0, np.arange(50.0)), now=10.1)
    assert skipped == 4
    assert executor.sample(10.1).target[0] == pytest.approx(3.0)
    assert executor.sample(10.1 + DT).target[0] == pytest.approx(4.0)


def test_a_wholly_stale_chunk_changes_nothing():
    executor = TrajectoryExecutor(MergeMode.REPLACE)
    executor.submit(chunk(0.0, [5.0] * 50), now=0.0)
    assert executor.submit(chunk(0.0, [9.0] * 3), now=1.0) == 3
    assert executor.sample(1.0).target[0] == 5.0


def test_replace_takes_over_at_once():
    executor = TrajectoryExecutor(MergeMode.REPLACE)
    executor.submit(chunk(0.0, [1.0] * 50), now=0.0)
    executor.submit(chunk(0.5, [2.0] * 50), now=0.5)
    assert executor.sample(0.5).target[0] == 2.0


def test_crossfade_blends_linearly_over_n_ticks():
    executor = TrajectoryExecutor(MergeMode.CROSSFADE, crossfade_ticks=4)
    executor.submit(chunk(0.0, [0.0] * 50), now=0.0)
    executor.submit(chunk(0.5, [1.0] * 50), now=0.5)
    blended = [executor.sample(0.5 + k * DT).target[0] for k in range(6)]
    np.testing.assert_allclose(blended, [0.25, 0.5, 0.75, 1.0, 1.0, 1.0])


def test_crossfade_from_a_held_position():
    executor = TrajectoryExecutor(MergeMode.CROSSFADE, crossfade_ticks=2)
    executor.hold(np.zeros(6))
    executor.submit(chunk(0.0, [2.0] * 10), now=0.0)
    assert executor.sample(0.0).target[0] == pytest.approx(1.0)
    assert executor.sample(DT).target[0] == pytest.approx(2.0)


def test_temporal_ensemble_weights_older_chunks_exponentially():
    coeff = 0.5
    executor = TrajectoryExecutor(MergeMode.TEMPORAL_ENSEMBLE, ensemble_coeff=coeff)
    executor.submit(chunk(0.0, [0.0] * 50), now=0.0)
    executor.submit(chunk(DT, [1.0] * 50), now=DT)
    executor.submit(chunk(2 * DT, [2.0] * 50), now=2 * DT)
    weights = np.exp(-coeff * np.arange(3))
    expected = weights @ np.array([0.0, 1.0, 2.0]) / weights.sum()
    assert executor.sample(2 * DT).target[0] == pytest.approx(expected)
    # Only chunks that cover the time count: the first ends at 49 * DT.
    assert executor.sample(50 * DT).target[0] == pytest.approx(
        (1.0 * 1 + 2.0 * np.exp(-coeff)) / (1 + np.exp(-coeff))
    )


def test_after_the_last_point_the_target_is_held_and_inactive():
    executor = TrajectoryExecutor()
    executor.submit(chunk(0.0, [1.0, 2.0]), now=0.0)
    assert executor.sample(DT).active
    output = executor.sample(1.0)
    assert not output.active and output.target[0] == 2.0
    assert executor.active_until is None


@pytest.mark.parametrize("mode", list(MergeMode))
def test_the_last_point_is_reached_when_it_falls_between_two_ticks(mode):
    """Ticks half a period out of phase with the chunk: the last tick inside it is short of the end."""
    executor = TrajectoryExecutor(mode)
    executor.submit(chunk(0.0, np.linspace(0.0, 0.5, 11)), now=0.0)
    ticks = (np.arange(14) + 0.5) * DT
    targets = [executor.sample(t).target[0] for t in ticks]
    assert targets[9] == pytest.approx(0.475)  # between points 9 and 10
    assert targets[10:] == [pytest.approx(0.5)] * 4  # then held at the chunk's last point


def test_temporal_ensemble_ends_where_its_chunks_end():
    coeff = 0.5
    executor = TrajectoryExecutor(MergeMode.TEMPORAL_ENSEMBLE, ensemble_coeff=coeff)
    executor.submit(chunk(0.0, [1.0] * 10), now=0.0)
    executor.submit(chunk(0.0, [3.0] * 10), now=0.0)
    assert executor.sample(9.5 * DT).target[0] == pytest.approx((1.0 + 3.0 * np.exp(-coeff)) / (1 + np.exp(-coeff)))


def test_hold_of_a_command_counts_as_active():
    executor = TrajectoryExecutor()
    assert executor.sample(0.0).target is None
    executor.hold(np.ones(6), commanded=True)
    assert executor.sample(0.0).active
    executor.hold(np.ones(6))
    assert not executor.sample(0.0).active


def test_bad_mode_and_crossfade_length():
    with pytest.raises(ValueError):
        TrajectoryExecutor("blend")
    with pytest.raises(ValueError, match="crossfade_ticks"):
        TrajectoryExecutor(MergeMode.CROSSFADE, crossfade_ticks=0)
