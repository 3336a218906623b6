"""RobotModel and PlannerSettings validation."""

from __future__ import annotations

import dataclasses
import math

import pytest

from mapl_robotics.errors import MaplError, PlannerConfigError
from mapl_robotics.planning import PlannerSettings, RobotModel


def test_robot_model_defaults_and_frozen():
    robot = RobotModel(radius_m=0.3, max_speed_mps=1.2, max_accel_mps2=0.5)
    assert robot.drive == 'holonomic'
    assert not robot.is_differential
    assert robot.min_turn_radius_m == 0.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        robot.radius_m = 1.0  # type: ignore[misc]


def test_robot_models_compare_by_value():
    first = RobotModel(radius_m=0.3, max_speed_mps=1, max_accel_mps2=0.5)
    second = RobotModel(radius_m=0.3, max_speed_mps=1.0, max_accel_mps2=0.5)
    assert first == second
    assert isinstance(second.max_speed_mps, float)


@pytest.mark.parametrize('field, value, fragment', [
    ('radius_m', -0.1, 'radius_m=-0.1'),
    ('radius_m', math.nan, 'finite'),
    ('max_speed_mps', 0.0, 'max_speed_mps=0.0'),
    ('max_speed_mps', math.inf, 'finite'),
    ('max_accel_mps2', -1.0, 'max_accel_mps2'),
    ('max_accel_mps2', '1.0', 'must be a number'),
    ('drive', 'omni', "'holonomic', 'differential'"),
    ('max_yaw_rate_radps', 0.0, 'max_yaw_rate_radps'),
    ('min_turn_radius_m', -1.0, 'min_turn_radius_m'),
    ('radius_m', True, 'must be a number'),
])
def test_robot_model_rejects_bad_fields(field, value, fragment):
    values = dict(radius_m=0.3, max_speed_mps=1.0, max_accel_mps2=0.5)
    values[field] = value
    with pytest.raises(PlannerConfigError) as caught:
        RobotModel(**values)
    assert fragment in str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, MaplError)


@pytest.mark.parametrize('field, value, fragment', [
    ('algorithm', 'prm', "'rrt_connect', 'rrt', 'rrt_star'"),
    ('step_size_m', 0.0, 'step_size_m'),
    ('goal_bias', 1.0, 'goal_bias'),
    ('goal_bias', -0.1, 'goal_bias'),
    ('time_budget_s', -1.0, 'time_budget_s'),
    ('max_iterations', 0, 'max_iterations'),
    ('max_iterations', 1.5, 'must be an integer'),
    ('connect_batch', 0, 'connect_batch'),
    ('rewire_radius_m', 0.0, 'rewire_radius_m'),
    ('rrt_star_refine_iterations', -1, 'rrt_star_refine_iterations'),
    ('smoothing_iterations', -1, 'smoothing_iterations'),
    ('shortcut_batch', 0, 'shortcut_batch'),
    ('sample_dt_s', 0.0, 'sample_dt_s'),
    ('horizon_s', math.nan, 'horizon_s'),
    ('max_wait_s', -1.0, 'max_wait_s'),
    ('path_attempts', 0, 'path_attempts'),
    ('wait_rounds', -1, 'wait_rounds'),
])
def test_planner_settings_reject_bad_fields(field, value, fragment):
    with pytest.raises(PlannerConfigError) as caught:
        PlannerSettings(**{field: value})
    assert fragment in str(caught.value)


def test_planner_settings_replace_validates_again():
    settings = PlannerSettings()
    assert settings.replace(algorithm='rrt_star').algorithm == 'rrt_star'
    with pytest.raises(PlannerConfigError):
        settings.replace(step_size_m=-1.0)
