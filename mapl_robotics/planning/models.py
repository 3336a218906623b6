"""Robot model and planner settings: validated, immutable value types.

Both types check their fields on construction and raise
:class:`~mapl_robotics.errors.PlannerConfigError` naming the field, the value and the allowed
range, so a bad configuration fails where it is written rather than deep inside a planner.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from mapl_robotics.errors import PlannerConfigError

__all__ = ['ALGORITHMS', 'DRIVES', 'CORNER_RULES', 'RobotModel', 'PlannerSettings',
           'require_generator']

ALGORITHMS = ('rrt_connect', 'rrt', 'rrt_star')
DRIVES = ('holonomic', 'differential')
CORNER_RULES = ('stop', 'deflection')


def require_generator(rng: Any, *, caller: str) -> np.random.Generator:
    """Return ``rng`` if it is a :class:`numpy.random.Generator`, else raise.

    Planners take their randomness only from the generator passed in, so a seeded generator
    gives a reproducible plan. The legacy ``numpy.random.RandomState`` and the global
    ``numpy.random`` functions are rejected, as are seeds given as plain integers.

    :raises PlannerConfigError: naming ``caller`` and the type received.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    raise PlannerConfigError(
        f'{caller} needs rng to be a numpy.random.Generator, got {type(rng).__name__} '
        f'({rng!r:.60}); pass numpy.random.default_rng(seed)')


def _require_number(owner: str, name: str, value: Any, *, minimum: float = 0.0,
                    inclusive: bool = False, allow_inf: bool = False) -> float:
    """Return ``value`` as a float, raising PlannerConfigError unless it is above ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PlannerConfigError(
            f'{owner}.{name}={value!r} must be a number, got {type(value).__name__}')
    number = float(value)
    if math.isnan(number) or (math.isinf(number) and not allow_inf):
        raise PlannerConfigError(f'{owner}.{name}={value!r} must be a finite number')
    if number < minimum or (number == minimum and not inclusive):
        relation = '>=' if inclusive else '>'
        raise PlannerConfigError(f'{owner}.{name}={value!r} must be {relation} {minimum}')
    return number


def _require_int(owner: str, name: str, value: Any, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PlannerConfigError(
            f'{owner}.{name}={value!r} must be an integer, got {type(value).__name__}')
    if value < minimum:
        raise PlannerConfigError(f'{owner}.{name}={value!r} must be >= {minimum}')
    return int(value)


def _require_choice(owner: str, name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        allowed = ', '.join(repr(choice) for choice in choices)
        raise PlannerConfigError(f'{owner}.{name}={value!r} is not supported; use one of '
                                 f'{allowed}')
    return str(value)


@dataclasses.dataclass(frozen=True)
class RobotModel:
    """A disc robot with speed and acceleration limits.

    :param radius_m: radius of the disc footprint.
    :param max_speed_mps: speed limit along the path.
    :param max_accel_mps2: limit on the magnitude of the acceleration vector.
    :param drive: ``'holonomic'`` (moves in any direction, yaw follows the direction of travel)
        or ``'differential'`` (moves only along its heading, so it turns in place at corners
        at up to ``max_yaw_rate_radps``, or follows arcs of at least ``min_turn_radius_m``).
    :param max_yaw_rate_radps: yaw-rate limit for differential drive.
    :param min_turn_radius_m: with differential drive and a value above zero, corners are
        rounded with arcs of this radius where they fit and are collision-free. Zero means
        turn in place.
    """

    radius_m: float
    max_speed_mps: float
    max_accel_mps2: float
    drive: str = 'holonomic'
    max_yaw_rate_radps: float = math.pi / 2.0
    min_turn_radius_m: float = 0.0

    def __post_init__(self) -> None:
        owner = 'RobotModel'
        object.__setattr__(self, 'radius_m',
                           _require_number(owner, 'radius_m', self.radius_m, inclusive=True))
        object.__setattr__(self, 'max_speed_mps',
                           _require_number(owner, 'max_speed_mps', self.max_speed_mps))
        object.__setattr__(self, 'max_accel_mps2',
                           _require_number(owner, 'max_accel_mps2', self.max_accel_mps2))
        object.__setattr__(self, 'drive', _require_choice(owner, 'drive', self.drive, DRIVES))
        object.__setattr__(self, 'max_yaw_rate_radps',
                           _require_number(owner, 'max_yaw_rate_radps',
                                           self.max_yaw_rate_radps))
        object.__setattr__(self, 'min_turn_radius_m',
                           _require_number(owner, 'min_turn_radius_m', self.min_turn_radius_m,
                                           inclusive=True))

    @property
    def is_differential(self) -> bool:
        return self.drive == 'differential'


@dataclasses.dataclass(frozen=True)
class PlannerSettings:
    """Settings for the geometric planners, smoothing, timing and space-time planning.

    Geometric planning (:func:`~mapl_robotics.planning.rrt.plan_path`):

    :param algorithm: ``'rrt_connect'`` (bidirectional, fastest), ``'rrt'`` or ``'rrt_star'``
        (asymptotically optimal, rewires within ``rewire_radius_m``).
    :param step_size_m: longest tree edge added by one extension.
    :param connect_batch: RRT-Connect samples per round; one collision-check call covers all
        edges of a round.
    :param goal_bias: probability of sampling the goal instead of a random point (RRT, RRT*).
    :param time_budget_s: wall-clock budget of one geometric search.
    :param max_iterations: iteration budget of one geometric search.
    :param rewire_radius_m: RRT* neighbourhood radius. The effective radius shrinks with the
        tree size as ``gamma * sqrt(log(n) / n)`` but never below ``step_size_m`` and never
        above this value.
    :param rrt_star_refine_iterations: with RRT*, iterations spent improving the path after
        the first solution, still bounded by ``time_budget_s``.
    :param smoothing_iterations: rounds of shortcut smoothing after the search, one checker call
        each (zero keeps only the shortest route through the path's own vertices).
    :param shortcut_batch: about how many shortcut candidates one smoothing round checks.

    Time parameterization (:func:`~mapl_robotics.planning.timing.time_parameterize`):

    :param sample_dt_s: sample spacing inside acceleration and deceleration phases.
    :param corner_rule: ``'stop'`` (come to rest at every corner) or ``'deflection'``. With
        ``'deflection'`` a shallow corner is passed at the speed whose velocity change over
        ``sample_dt_s`` stays within the acceleration limit (see
        :mod:`mapl_robotics.planning.timing`).

    Space-time planning (:func:`~mapl_robotics.planning.spacetime.plan_trajectory`):

    :param horizon_s: how far ahead moving obstacles are predicted and checked.
    :param max_wait_s: longest total wait the planner inserts into one trajectory.
    :param path_attempts: geometric paths tried before giving up.
    :param wait_rounds: rounds of the wait-insertion search per geometric path.
    :param static_margin_m: extra distance that space-time plans keep from the static map,
        so that a robot tracking its plan with a small error does not touch a wall. When the
        start or the goal lies within the margin of a wall, or the margin closes every route,
        the whole plan uses the bare radius.
    """

    algorithm: str = 'rrt_connect'
    step_size_m: float = 10.0
    connect_batch: int = 16
    goal_bias: float = 0.05
    time_budget_s: float = 2.0
    max_iterations: int = 20_000
    rewire_radius_m: float = 5.0
    rrt_star_refine_iterations: int = 300
    smoothing_iterations: int = 1
    shortcut_batch: int = 256
    sample_dt_s: float = 0.2
    corner_rule: str = 'stop'
    horizon_s: float = 120.0
    max_wait_s: float = 60.0
    path_attempts: int = 4
    wait_rounds: int = 40
    static_margin_m: float = 0.05

    def __post_init__(self) -> None:
        owner = 'PlannerSettings'
        object.__setattr__(self, 'algorithm',
                           _require_choice(owner, 'algorithm', self.algorithm, ALGORITHMS))
        object.__setattr__(self, 'step_size_m',
                           _require_number(owner, 'step_size_m', self.step_size_m))
        object.__setattr__(self, 'connect_batch',
                           _require_int(owner, 'connect_batch', self.connect_batch, minimum=1))
        goal_bias = _require_number(owner, 'goal_bias', self.goal_bias, inclusive=True)
        if goal_bias >= 1.0:
            raise PlannerConfigError(
                f'{owner}.goal_bias={self.goal_bias!r} must be in [0, 1); at 1 the planner '
                'would never explore')
        object.__setattr__(self, 'goal_bias', goal_bias)
        object.__setattr__(self, 'time_budget_s',
                           _require_number(owner, 'time_budget_s', self.time_budget_s))
        object.__setattr__(self, 'max_iterations',
                           _require_int(owner, 'max_iterations', self.max_iterations,
                                        minimum=1))
        object.__setattr__(self, 'rewire_radius_m',
                           _require_number(owner, 'rewire_radius_m', self.rewire_radius_m))
        object.__setattr__(self, 'rrt_star_refine_iterations',
                           _require_int(owner, 'rrt_star_refine_iterations',
                                        self.rrt_star_refine_iterations, minimum=0))
        object.__setattr__(self, 'smoothing_iterations',
                           _require_int(owner, 'smoothing_iterations',
                                        self.smoothing_iterations, minimum=0))
        object.__setattr__(self, 'shortcut_batch',
                           _require_int(owner, 'shortcut_batch', self.shortcut_batch,
                                        minimum=1))
        object.__setattr__(self, 'sample_dt_s',
                           _require_number(owner, 'sample_dt_s', self.sample_dt_s))
        object.__setattr__(self, 'corner_rule',
                           _require_choice(owner, 'corner_rule', self.corner_rule,
                                           CORNER_RULES))
        object.__setattr__(self, 'horizon_s',
                           _require_number(owner, 'horizon_s', self.horizon_s))
        object.__setattr__(self, 'max_wait_s',
                           _require_number(owner, 'max_wait_s', self.max_wait_s,
                                           inclusive=True))
        object.__setattr__(self, 'path_attempts',
                           _require_int(owner, 'path_attempts', self.path_attempts, minimum=1))
        object.__setattr__(self, 'static_margin_m',
                           _require_number(owner, 'static_margin_m', self.static_margin_m,
                                           inclusive=True))
        object.__setattr__(self, 'wait_rounds',
                           _require_int(owner, 'wait_rounds', self.wait_rounds, minimum=0))

    def replace(self, **changes: Any) -> 'PlannerSettings':
        """Return a copy with some fields changed, validated again."""
        return dataclasses.replace(self, **changes)
