"""Conversions between mapl_robotics types and ROS messages.

- :class:`~mapl_robotics.geometry.Trajectory` to ``nav_msgs/Path`` and back: every pose is
  stamped with the ROS time at which the robot is due there.
- :class:`~mapl_robotics.geometry.World` to ``nav_msgs/OccupancyGrid``.
- Yaw angles to quaternions and back (rotation about +z only: the fleet is planar).

Stamps go through :mod:`mapl_robotics.ros.time_conversion`, never through float seconds of ROS
time.
"""

from __future__ import annotations

import math
import numpy as np
from geometry_msgs.msg import Pose, PoseStamped, Quaternion
from nav_msgs.msg import OccupancyGrid, Path
from std_msgs.msg import Header

from mapl_robotics.errors import InvalidCoordinateError
from mapl_robotics.geometry import Trajectory, World
from mapl_robotics.ros.time_conversion import FleetTimeBase, ns_to_stamp, stamp_to_ns

__all__ = [
    'header',
    'occupancy_grid_from_world',
    'path_to_trajectory',
    'pose_2d',
    'quaternion_to_yaw',
    'trajectory_to_path',
    'yaw_to_quaternion',
]


def header(*, frame_id: str, stamp_ns: int) -> Header:
    """Build a ``std_msgs/Header`` from integer nanoseconds."""
    return Header(frame_id=frame_id, stamp=ns_to_stamp(stamp_ns))


def yaw_to_quaternion(yaw_rad: float) -> Quaternion:
    """Return the quaternion of a rotation by ``yaw_rad`` about +z."""
    half = 0.5 * float(yaw_rad)
    return Quaternion(x=0.0, y=0.0, z=math.sin(half), w=math.cos(half))


def quaternion_to_yaw(quaternion: Quaternion) -> float:
    """Return the yaw in radians (in ``[-pi, pi]``) of a quaternion.

    Roll and pitch are ignored, which is exact for the planar rotations this fleet uses.

    :raises InvalidCoordinateError: for a non-finite or zero-length quaternion.
    """
    q = (quaternion.x, quaternion.y, quaternion.z, quaternion.w)
    if not all(math.isfinite(v) for v in q):
        raise InvalidCoordinateError(
            f'orientation quaternion {q} contains a non-finite value; send a unit quaternion')
    norm = math.sqrt(sum(v * v for v in q))
    if norm < 1e-9:
        raise InvalidCoordinateError(
            f'orientation quaternion {q} has zero length; send a unit quaternion '
            '(w=1 for yaw 0)')
    x, y, z, w = (v / norm for v in q)
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def pose_2d(*, x_m: float, y_m: float, yaw_rad: float) -> Pose:
    """Build a ``geometry_msgs/Pose`` on the z = 0 plane."""
    pose = Pose()
    pose.position.x = float(x_m)
    pose.position.y = float(y_m)
    pose.position.z = 0.0
    pose.orientation = yaw_to_quaternion(yaw_rad)
    return pose


def trajectory_to_path(trajectory: Trajectory, *, time_base: FleetTimeBase, stamp_ns: int,
                       frame_id: str = 'map') -> Path:
    """Convert a trajectory to a ``nav_msgs/Path``.

    :param time_base: maps the trajectory's fleet seconds to ROS time.
    :param stamp_ns: the stamp of the path's own header, in integer nanoseconds.
    :returns: one pose per trajectory sample; each pose's header stamp is the ROS time at
        which the robot is due at that pose.
    """
    path = Path(header=header(frame_id=frame_id, stamp_ns=stamp_ns))
    poses = []
    for t_s, (x_m, y_m), yaw_rad in zip(trajectory.t_s, trajectory.xy_m, trajectory.yaw_rad):
        stamped = PoseStamped()
        stamped.header = header(frame_id=frame_id, stamp_ns=time_base.to_ros_ns(float(t_s)))
        stamped.pose = pose_2d(x_m=x_m, y_m=y_m, yaw_rad=yaw_rad)
        poses.append(stamped)
    path.poses = poses
    return path


def path_to_trajectory(path: Path, *, time_base: FleetTimeBase) -> Trajectory:
    """Convert a ``nav_msgs/Path`` whose poses carry due times back to a trajectory.

    :raises TrajectoryError: when the pose stamps do not strictly increase.
    :raises InvalidCoordinateError: when the path is empty.
    """
    if not path.poses:
        raise InvalidCoordinateError('the path has no poses; a trajectory needs at least one')
    times_s = [time_base.to_fleet_s(stamp_to_ns(p.header.stamp)) for p in path.poses]
    xy_m = [(p.pose.position.x, p.pose.position.y) for p in path.poses]
    yaw_rad = [quaternion_to_yaw(p.pose.orientation) for p in path.poses]
    return Trajectory(t_s=np.asarray(times_s), xy_m=np.asarray(xy_m),
                      yaw_rad=np.asarray(yaw_rad))


def occupancy_grid_from_world(world: World, *, resolution_m: float, stamp_ns: int,
                              frame_id: str = 'map') -> OccupancyGrid:
    """Rasterize a world into a ``nav_msgs/OccupancyGrid``.

    Cell values follow the message definition: 0 free, 100 occupied, -1 unknown. Row 0 is the
    row nearest ``y_min``, as map_server publishes.
    """
    grid = world.to_occupancy_grid(resolution_m=resolution_m)
    cells = np.asarray(grid.data, dtype=np.int8)
    message = OccupancyGrid(header=header(frame_id=frame_id, stamp_ns=stamp_ns))
    message.info.map_load_time = ns_to_stamp(stamp_ns)
    message.info.resolution = float(grid.resolution_m)
    message.info.height, message.info.width = (int(n) for n in cells.shape)
    origin_x_m, origin_y_m = grid.origin_xy_m
    message.info.origin = pose_2d(x_m=origin_x_m, y_m=origin_y_m,
                                  yaw_rad=float(grid.origin_yaw_rad))
    message.data = cells.ravel(order='C').tolist()
    return message

