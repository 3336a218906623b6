"""Lossless conversion between ROS time stamps and fleet time.

ROS stamps (``builtin_interfaces/Time``) contain whole seconds plus nanoseconds. A double
carries about 16 significant digits, so a stamp such as 1553575413247045598 ns does not
survive a trip through float seconds: the nearest double is 1553575413.24704551697 s, 81 ns
off. Stamps therefore
travel as integer nanoseconds on every path that copies them from one message to another.

Trajectories carry float seconds in fleet time. :class:`FleetTimeBase` maps them to ROS
nanoseconds relative to an integer epoch: the offsets stay small, so a float offset converts
back to the exact integer nanosecond while it is below 2**51 ns (about 26 days). Past that
the conversion still works but may round by a nanosecond or more.
"""

from __future__ import annotations

import dataclasses
import math
import time

from builtin_interfaces.msg import Time as TimeMsg

from mapl_robotics.errors import InvalidCoordinateError

__all__ = [
    'NANOSECONDS_PER_SECOND',
    'FleetTimeBase',
    'fleet_time_base',
    'ns_to_stamp',
    'stamp_to_ns',
]

NANOSECONDS_PER_SECOND = 1_000_000_000

# builtin_interfaces/Time.sec is int32 and nanosec is uint32.
_MAX_STAMP_NS = (2 ** 31 - 1) * NANOSECONDS_PER_SECOND + NANOSECONDS_PER_SECOND - 1


def stamp_to_ns(stamp: TimeMsg) -> int:
    """Convert a ``builtin_interfaces/Time`` to integer nanoseconds, without rounding."""
    return int(stamp.sec) * NANOSECONDS_PER_SECOND + int(stamp.nanosec)


def ns_to_stamp(stamp_ns: int) -> TimeMsg:
    """Convert integer nanoseconds to a ``builtin_interfaces/Time``.

    :raises InvalidCoordinateError: for a value that is not an integer or does not fit the
        message (negative, or past the year 2038 limit of its int32 seconds field).
    """
    if isinstance(stamp_ns, bool) or not isinstance(stamp_ns, int):
        raise InvalidCoordinateError(
            f'stamp_ns={stamp_ns!r} must be an int of nanoseconds; convert float seconds with '
            'FleetTimeBase.to_ros_ns so no precision is lost')
    if not 0 <= stamp_ns <= _MAX_STAMP_NS:
        raise InvalidCoordinateError(
            f'stamp_ns={stamp_ns} is outside [0, {_MAX_STAMP_NS}], the range of '
            'builtin_interfaces/Time; check the clock source')
    seconds, nanoseconds = divmod(stamp_ns, NANOSECONDS_PER_SECOND)
    return TimeMsg(sec=seconds, nanosec=nanoseconds)


@dataclasses.dataclass(frozen=True)
class FleetTimeBase:
    """The ROS time, in integer nanoseconds, at which fleet time is zero.

    Fleet time in seconds is ``(ros_ns - epoch_ns) / 1e9``. A round trip from ROS time to fleet
    time and back returns the same nanosecond while the offset from the epoch stays below
    2**51 ns.
    """

    epoch_ns: int

    def __post_init__(self) -> None:
        if isinstance(self.epoch_ns, bool) or not isinstance(self.epoch_ns, int):
            raise InvalidCoordinateError(
                f'epoch_ns={self.epoch_ns!r} must be an int of nanoseconds')
        if self.epoch_ns < 0:
            raise InvalidCoordinateError(f'epoch_ns={self.epoch_ns} must be >= 0')

    @classmethod
    def starting_at(cls, ros_ns: int) -> 'FleetTimeBase':
        """Build a base whose epoch is ``ros_ns`` rounded down to a whole second."""
        return cls(epoch_ns=(int(ros_ns) // NANOSECONDS_PER_SECOND) * NANOSECONDS_PER_SECOND)

    def to_fleet_s(self, ros_ns: int) -> float:
        """Convert ROS time in nanoseconds to fleet seconds."""
        offset_ns = int(ros_ns) - self.epoch_ns
        # Split into whole seconds and a remainder so the division rounds once.
        seconds, remainder_ns = divmod(offset_ns, NANOSECONDS_PER_SECOND)
        return seconds + remainder_ns / NANOSECONDS_PER_SECOND

    def to_ros_ns(self, fleet_s: float) -> int:
        """Convert fleet seconds to ROS time in integer nanoseconds (rounded to nearest)."""
        if not math.isfinite(fleet_s):
            raise InvalidCoordinateError(
                f'fleet time {fleet_s!r} s must be a finite number of seconds')
        seconds = math.floor(fleet_s)
        remainder_ns = round((fleet_s - seconds) * NANOSECONDS_PER_SECOND)
        return self.epoch_ns + int(seconds) * NANOSECONDS_PER_SECOND + int(remainder_ns)

    def stamp_to_fleet_s(self, stamp: TimeMsg) -> float:
        """Convert a ROS stamp to fleet seconds."""
        return self.to_fleet_s(stamp_to_ns(stamp))

    def fleet_s_to_stamp(self, fleet_s: float) -> TimeMsg:
        """Convert fleet seconds to a ROS stamp."""
        return ns_to_stamp(self.to_ros_ns(fleet_s))


def fleet_time_base(node) -> FleetTimeBase:
    """Return the fleet time base of a node from its ``fleet_epoch_ns`` parameter.

    A positive value is used as it is; ``mapl fleet`` and the launch file always set one, the
    same for every node. The value 0 chooses automatically: with ``use_sim_time`` the
    simulator clock's zero, otherwise the most recent midnight UTC of the system clock, so
    that agents started separately on the same day share a fleet time.

    NOTE: agents started on different UTC days with an automatic epoch disagree on fleet
    time by a day; set ``fleet_epoch_ns`` explicitly for such fleets.
    """
    epoch_ns = int(node.get_parameter('fleet_epoch_ns').value)
    if epoch_ns > 0:
        return FleetTimeBase(epoch_ns=epoch_ns)
    if node.get_parameter('use_sim_time').value:
        return FleetTimeBase(epoch_ns=0)
    day_ns = 86_400 * NANOSECONDS_PER_SECOND
    return FleetTimeBase(epoch_ns=(time.time_ns() // day_ns) * day_ns)
