"""Rejection of malformed goal and odometry messages, each with a typed error and a reason."""

from __future__ import annotations

import math

import pytest
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry
from shapely.geometry import box

from mapl_robotics.errors import (GoalInCollisionError, InvalidCoordinateError,
                                  OutOfBoundsError, UnknownFrameError)
from mapl_robotics.geometry import World
from mapl_robotics.ros.validation import validate_goal, validate_odometry

WORLD = World(bounds_m=(0.0, 0.0, 10.0, 10.0), obstacles=[box(4.0, 4.0, 6.0, 6.0)],
              name='square')


def goal(x_m: float, y_m: float, *, frame_id: str = 'map', w: float = 1.0) -> PoseStamped:
    message = PoseStamped()
    message.header.frame_id = frame_id
    message.header.stamp.sec = 7
    message.pose.position.x = x_m
    message.pose.position.y = y_m
    message.pose.orientation.w = w
    return message


def test_valid_goal_is_returned():
    result = validate_goal(goal(1.0, 2.0, frame_id='/map'), world=WORLD, radius_m=0.3)
    assert (result.x_m, result.y_m, result.yaw_rad) == (1.0, 2.0, 0.0)
    assert result.frame_id == 'map'
    assert result.stamp_ns == 7_000_000_000


@pytest.mark.parametrize('message, error, reason', [
    (goal(float('nan'), 2.0), InvalidCoordinateError, 'position.x is nan'),
    (goal(1.0, float('inf')), InvalidCoordinateError, 'position.y is inf'),
    (goal(1.0, 2.0, w=float('nan')), InvalidCoordinateError, 'orientation.w is nan'),
    (goal(1.0, 2.0, w=0.0), InvalidCoordinateError, 'zero length'),
    (goal(1.0, 2.0, frame_id='odom'), UnknownFrameError, "frame_id 'odom'"),
    (goal(1.0, 2.0, frame_id=''), UnknownFrameError, "frame_id ''"),
    (goal(12.0, 2.0), OutOfBoundsError, 'outside map'),
    (goal(5.0, 5.0), GoalInCollisionError, 'inside an obstacle'),
    (goal(3.9, 5.0), GoalInCollisionError, 'robot radius'),
    (goal(0.1, 5.0), GoalInCollisionError, 'map edge'),
])
def test_bad_goal_rejected_with_reason(message, error, reason):
    with pytest.raises(error) as caught:
        validate_goal(message, world=WORLD, radius_m=0.3)
    assert reason in str(caught.value)
    assert isinstance(caught.value, ValueError)


def odometry(*, frame_id: str = 'odom', x_m: float = 1.0) -> Odometry:
    message = Odometry()
    message.header.frame_id = frame_id
    message.pose.pose.position.x = x_m
    message.pose.pose.orientation.z = math.sin(0.5)
    message.pose.pose.orientation.w = math.cos(0.5)
    message.twist.twist.linear.x = 0.2
    return message


def test_valid_odometry():
    result = validate_odometry(odometry(), accepted_frames=['odom'])
    assert result.x_m == 1.0
    assert result.yaw_rad == pytest.approx(1.0)
    assert result.vx_mps == 0.2


def test_odometry_rejects_nan_and_frame():
    with pytest.raises(InvalidCoordinateError, match='pose.position.x'):
        validate_odometry(odometry(x_m=float('nan')), accepted_frames=['odom'])
    with pytest.raises(UnknownFrameError, match='base_link'):
        validate_odometry(odometry(frame_id='base_link'), accepted_frames=['odom', 'map'])
