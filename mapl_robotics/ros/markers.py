"""RViz markers: committed plans, moving obstacles and robot footprints.

Every function returns ``visualization_msgs/Marker`` objects in one namespace per kind, with
ids stable across updates, so RViz replaces a marker in place instead of piling up copies.
"""

from __future__ import annotations

import zlib
from typing import Iterable, Mapping

import numpy as np
from builtin_interfaces.msg import Duration as DurationMsg
from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from mapl_robotics.geometry import MovingObstacle, Trajectory
from mapl_robotics.ros.conversions import header, pose_2d

__all__ = [
    'color_for',
    'footprint_marker',
    'moving_obstacle_markers',
    'plan_markers',
    'marker_array',
]

# Distinct, colour-blind friendly hues (Okabe-Ito palette).
_PALETTE = (
    (0.90, 0.62, 0.00), (0.34, 0.71, 0.91), (0.00, 0.62, 0.45), (0.94, 0.89, 0.26),
    (0.00, 0.45, 0.70), (0.84, 0.37, 0.00), (0.80, 0.47, 0.65),
)
_OBSTACLE_COLOR = (0.85, 0.1, 0.1)
_PLAN_LINE_WIDTH_M = 0.05
_MARKER_HEIGHT_M = 0.1


def color_for(name: str, *, alpha: float = 1.0) -> ColorRGBA:
    """Return a colour that depends only on ``name``, so every node draws a robot alike."""
    red, green, blue = _PALETTE[zlib.crc32(name.encode('utf-8')) % len(_PALETTE)]
    return ColorRGBA(r=red, g=green, b=blue, a=float(alpha))


def _marker(*, namespace: str, marker_id: int, marker_type: int, frame_id: str,
            stamp_ns: int, lifetime_s: float = 0.0) -> Marker:
    marker = Marker(header=header(frame_id=frame_id, stamp_ns=stamp_ns))
    marker.ns = namespace
    marker.id = marker_id
    marker.type = marker_type
    marker.action = Marker.ADD
    marker.pose = pose_2d(x_m=0.0, y_m=0.0, yaw_rad=0.0)
    whole_s = int(lifetime_s)
    marker.lifetime = DurationMsg(sec=whole_s, nanosec=int(round((lifetime_s - whole_s) * 1e9)))
    return marker


def plan_markers(plans: Mapping[str, Trajectory], *, stamp_ns: int,
                 frame_id: str = 'map') -> list[Marker]:
    """Return one line strip per committed plan, coloured per robot, in namespace ``plans``.

    Marker ids follow the sorted robot names, so the same robot keeps the same id.
    """
    markers = []
    for marker_id, name in enumerate(sorted(plans)):
        marker = _marker(namespace='plans', marker_id=marker_id, marker_type=Marker.LINE_STRIP,
                         frame_id=frame_id, stamp_ns=stamp_ns)
        marker.scale.x = _PLAN_LINE_WIDTH_M
        marker.color = color_for(name, alpha=0.9)
        marker.points = [Point(x=float(x), y=float(y), z=0.0) for x, y in plans[name].xy_m]
        marker.text = name
        markers.append(marker)
    return markers


def footprint_marker(*, name: str, xy_m, radius_m: float, stamp_ns: int,
                     frame_id: str = 'map') -> Marker:
    """Return a flat cylinder the size of the robot's disc footprint, in namespace
    ``footprint``."""
    marker = _marker(namespace='footprint', marker_id=0, marker_type=Marker.CYLINDER,
                     frame_id=frame_id, stamp_ns=stamp_ns)
    x_m, y_m = (float(v) for v in np.asarray(xy_m, dtype=float).reshape(2))
    marker.pose = pose_2d(x_m=x_m, y_m=y_m, yaw_rad=0.0)
    marker.scale.x = marker.scale.y = 2.0 * float(radius_m)
    marker.scale.z = _MARKER_HEIGHT_M
    marker.color = color_for(name, alpha=0.6)
    marker.text = name
    return marker


def moving_obstacle_markers(obstacles: Iterable[MovingObstacle], *, t_s: float,
                            horizon_s: float, stamp_ns: int, frame_id: str = 'map',
                            lifetime_s: float = 1.0) -> list[Marker]:
    """Return, per moving obstacle, a cylinder at its position at fleet time ``t_s`` and a
    line strip of its predicted motion over the next ``horizon_s`` seconds.

    Namespaces are ``moving_obstacles`` and ``moving_obstacle_predictions``. Markers expire
    after ``lifetime_s`` unless refreshed, so an obstacle that is no longer known disappears.
    """
    markers = []
    for marker_id, obstacle in enumerate(sorted(obstacles, key=lambda o: o.obstacle_id)):
        x_m, y_m = (float(v) for v in obstacle.position_at(t_s))
        body = _marker(namespace='moving_obstacles', marker_id=marker_id,
                       marker_type=Marker.CYLINDER, frame_id=frame_id, stamp_ns=stamp_ns,
                       lifetime_s=lifetime_s)
        body.pose = pose_2d(x_m=x_m, y_m=y_m, yaw_rad=0.0)
        body.scale.x = body.scale.y = 2.0 * obstacle.radius_m
        body.scale.z = 2.0 * _MARKER_HEIGHT_M
        body.color = ColorRGBA(r=_OBSTACLE_COLOR[0], g=_OBSTACLE_COLOR[1],
                               b=_OBSTACLE_COLOR[2], a=0.8)
        body.text = obstacle.obstacle_id
        markers.append(body)
        prediction = obstacle.predict(t_s, t_s + horizon_s)
        line = _marker(namespace='moving_obstacle_predictions', marker_id=marker_id,
                       marker_type=Marker.LINE_STRIP, frame_id=frame_id, stamp_ns=stamp_ns,
                       lifetime_s=lifetime_s)
        line.scale.x = _PLAN_LINE_WIDTH_M / 2.0
        line.color = ColorRGBA(r=_OBSTACLE_COLOR[0], g=_OBSTACLE_COLOR[1],
                               b=_OBSTACLE_COLOR[2], a=0.5)
        points = prediction.xy_m if len(prediction) > 1 else np.vstack([prediction.xy_m] * 2)
        line.points = [Point(x=float(x), y=float(y), z=0.0) for x, y in points]
        markers.append(line)
    return markers


def marker_array(markers: Iterable[Marker], *, clear_first: bool = False,
                 frame_id: str = 'map', stamp_ns: int = 0) -> MarkerArray:
    """Wrap markers in a ``MarkerArray``; ``clear_first`` prepends a DELETEALL marker so that
    markers of plans that no longer exist vanish."""
    items = []
    if clear_first:
        clear = Marker(header=header(frame_id=frame_id, stamp_ns=stamp_ns))
        clear.action = Marker.DELETEALL
        items.append(clear)
    items.extend(markers)
    return MarkerArray(markers=items)
