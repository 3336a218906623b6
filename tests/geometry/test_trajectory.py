"""Trajectory: construction checks, interpolation, resampling and transformations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapl_robotics.errors import TrajectoryError
from mapl_robotics.geometry import Trajectory
from mapl_robotics.geometry.trajectory import MAX_RESAMPLE_COUNT, heading_along


@pytest.fixture
def l_shape() -> Trajectory:
    return Trajectory.from_samples([(0.0, 0.0, 0.0, 0.0), (2.0, 2.0, 0.0, 0.0),
                                    (4.0, 2.0, 2.0, math.pi / 2)])


def test_position_interpolates_and_clamps(l_shape):
    assert l_shape.position_at(1.0) == pytest.approx([1.0, 0.0])
    assert l_shape.position_at(3.0) == pytest.approx([2.0, 1.0])
    assert l_shape.position_at(-5.0) == pytest.approx([0.0, 0.0])
    assert l_shape.position_at(99.0) == pytest.approx([2.0, 2.0])
    assert l_shape.position_at([0.5, 3.5]).shape == (2, 2)


def test_velocity_inside_and_outside_span(l_shape):
    assert l_shape.velocity_at(1.0) == pytest.approx([1.0, 0.0])
    assert l_shape.velocity_at(3.0) == pytest.approx([0.0, 1.0])
    assert l_shape.velocity_at(-1.0) == pytest.approx([0.0, 0.0])
    assert l_shape.velocity_at(4.0) == pytest.approx([0.0, 0.0])
    assert l_shape.velocity_at([1.0, 3.0]).shape == (2, 2)


def test_yaw_takes_shorter_arc():
    turn = Trajectory.from_samples([(0.0, 0.0, 0.0, math.radians(170)),
                                    (1.0, 0.0, 0.0, math.radians(-170))])
    # Halfway between 170 and -170 degrees is 180 degrees, not 0.
    assert abs(float(turn.yaw_at(0.5))) == pytest.approx(math.pi)
    assert abs(float(turn.yaw_at(0.25))) == pytest.approx(math.radians(175))


def test_properties(l_shape):
    assert len(l_shape) == 3
    assert l_shape.start_time_s == 0.0
    assert l_shape.end_time_s == 4.0
    assert l_shape.duration_s == 4.0
    assert l_shape.length_m == pytest.approx(4.0)
    assert l_shape.max_speed_mps == pytest.approx(1.0)
    assert l_shape.start_xy_m.tolist() == [0.0, 0.0]
    assert l_shape.end_xy_m.tolist() == [2.0, 2.0]


def test_arrays_are_read_only(l_shape):
    with pytest.raises(ValueError):
        l_shape.xy_m[0, 0] = 5.0


@pytest.mark.parametrize('samples, message', [
    ([(0.0, 0.0, 0.0, 0.0), (0.0, 1.0, 0.0, 0.0)], 'strictly increase'),
    ([(1.0, 0.0, 0.0, 0.0), (0.5, 1.0, 0.0, 0.0)], 'strictly increase'),
    ([(0.0, math.nan, 0.0, 0.0)], 'non-finite'),
    ([(0.0, 0.0, math.inf, 0.0)], 'non-finite'),
    ([(0.0, 0.0, 0.0)], r'\(t_s, x_m, y_m, yaw_rad\)'),
    ([], r'\(t_s, x_m, y_m, yaw_rad\)'),
])
def test_invalid_samples_rejected(samples, message):
    with pytest.raises(TrajectoryError, match=message):
        Trajectory.from_samples(samples)


def test_shape_mismatch_rejected():
    with pytest.raises(TrajectoryError, match='shape'):
        Trajectory(t_s=np.array([0.0, 1.0]), xy_m=np.zeros((3, 2)), yaw_rad=np.zeros(2))
    with pytest.raises(TrajectoryError, match='yaw'):
        Trajectory(t_s=np.array([0.0, 1.0]), xy_m=np.zeros((2, 2)), yaw_rad=np.zeros(3))


def test_equality_and_hash(l_shape):
    same = Trajectory.from_list(l_shape.to_list())
    assert same == l_shape
    assert hash(same) == hash(l_shape)
    assert l_shape != l_shape.shifted(1.0)
    assert l_shape != 'a trajectory'


def test_sample_keeps_end_time(l_shape):
    resampled = l_shape.sample(0.3)
    assert resampled.start_time_s == 0.0
    assert resampled.end_time_s == 4.0
    assert np.all(np.diff(resampled.t_s) <= 0.3 + 1e-12)
    assert resampled.position_at(3.0) == pytest.approx(l_shape.position_at(3.0))
    with pytest.raises(TrajectoryError, match='dt_s'):
        l_shape.sample(0.0)


def test_sample_count_is_capped(l_shape):
    with pytest.raises(TrajectoryError, match=r'dt_s=1e-09 s over the duration 4.0 s.*1000000'):
        l_shape.sample(1e-9)
    with pytest.raises(TrajectoryError, match='dt_s'):
        l_shape.sample(math.nan)
    with pytest.raises(TrajectoryError, match='dt_s'):
        l_shape.sample('0.1')
    fine = l_shape.sample(4.0 / (MAX_RESAMPLE_COUNT - 10))
    assert MAX_RESAMPLE_COUNT - 10 <= len(fine) <= MAX_RESAMPLE_COUNT
    assert fine.end_time_s == 4.0


def test_sample_single_sample_trajectory():
    parked = Trajectory.from_samples([(5.0, 1.0, 2.0, 0.0)])
    resampled = parked.sample(0.5)
    assert resampled == parked


def test_stationary():
    still = Trajectory.stationary((1.0, 2.0), t_start_s=3.0, t_end_s=5.0, yaw_rad=0.5)
    assert still.t_s.tolist() == [3.0, 5.0]
    assert still.position_at(4.0) == pytest.approx([1.0, 2.0])
    instant = Trajectory.stationary((1.0, 2.0), t_start_s=3.0, t_end_s=3.0)
    assert len(instant) == 1


def test_shifted_clipped_extended(l_shape):
    later = l_shape.shifted(10.0)
    assert later.position_at(11.0) == pytest.approx([1.0, 0.0])
    part = l_shape.clipped(1.0, 3.0)
    assert part.start_time_s == 1.0
    assert part.end_time_s == 3.0
    assert part.t_s.tolist() == [1.0, 2.0, 3.0]
    assert part.position_at(1.5) == pytest.approx(l_shape.position_at(1.5))
    tail = l_shape.clipped(3.0)
    assert tail.end_time_s == 4.0
    after_end = l_shape.clipped(6.0, 8.0)
    assert len(after_end) == 1
    assert after_end.position_at(7.0) == pytest.approx([2.0, 2.0])
    longer = l_shape.extended_to(9.0)
    assert longer.end_time_s == 9.0
    assert longer.position_at(8.0) == pytest.approx([2.0, 2.0])
    assert l_shape.extended_to(2.0) is l_shape


def test_from_arrays_heading_follows_travel():
    trajectory = Trajectory.from_arrays([0.0, 1.0, 2.0, 3.0],
                                        [[0.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    assert trajectory.yaw_rad.tolist() == pytest.approx([0.0, 0.0, math.pi / 2, math.pi / 2])
    assert heading_along(np.array([[3.0, 3.0]])).tolist() == [0.0]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(0.01, 5.0), st.floats(-10, 10), st.floats(-10, 10)),
                min_size=1, max_size=12),
       st.floats(-2.0, 40.0))
def test_interpolation_stays_on_segment(steps, t_s):
    times = np.cumsum([step[0] for step in steps])
    xy = np.array([[step[1], step[2]] for step in steps])
    trajectory = Trajectory.from_arrays(times, xy)
    position = trajectory.position_at(t_s)
    index = int(np.clip(np.searchsorted(times, t_s) - 1, 0, len(times) - 1))
    nearby = xy[max(0, index - 1):index + 2]
    # The position lies within the bounding box of the neighbouring samples.
    assert np.all(position >= nearby.min(axis=0) - 1e-9)
    assert np.all(position <= nearby.max(axis=0) + 1e-9)
    assert Trajectory.from_list(trajectory.to_list()) == trajectory
