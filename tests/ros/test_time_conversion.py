"""ROS time <-> fleet time without loss."""

from __future__ import annotations

import pytest
from builtin_interfaces.msg import Time as TimeMsg
from hypothesis import given
from hypothesis import strategies as st

from mapl_robotics.errors import InvalidCoordinateError
from mapl_robotics.ros.time_conversion import FleetTimeBase, ns_to_stamp, stamp_to_ns

STAMP_NS = 1553575413247045598


def test_stamp_round_trip_is_exact():
    stamp = ns_to_stamp(STAMP_NS)
    assert (stamp.sec, stamp.nanosec) == (1553575413, 247045598)
    assert stamp_to_ns(stamp) == STAMP_NS


def test_float_seconds_would_lose_the_stamp():
    # The reason stamps travel as integers: float seconds cannot hold this one.
    assert round((STAMP_NS / 1e9) * 1e9) != STAMP_NS


def test_fleet_time_round_trip_is_exact():
    base = FleetTimeBase.starting_at(STAMP_NS)
    assert base.epoch_ns == 1553575413000000000
    fleet_s = base.to_fleet_s(STAMP_NS)
    assert fleet_s == pytest.approx(0.247045598, abs=1e-12)
    assert base.to_ros_ns(fleet_s) == STAMP_NS
    assert stamp_to_ns(base.fleet_s_to_stamp(base.stamp_to_fleet_s(ns_to_stamp(STAMP_NS)))) \
        == STAMP_NS


@given(offset_ns=st.integers(min_value=-(2 ** 51), max_value=2 ** 51))
def test_fleet_time_exact_within_range(offset_ns):
    base = FleetTimeBase(epoch_ns=1553575413000000000)
    ros_ns = base.epoch_ns + offset_ns
    assert base.to_ros_ns(base.to_fleet_s(ros_ns)) == ros_ns


@given(stamp_ns=st.integers(min_value=0, max_value=(2 ** 31 - 1) * 10 ** 9))
def test_stamp_round_trip_any_value(stamp_ns):
    assert stamp_to_ns(ns_to_stamp(stamp_ns)) == stamp_ns


@pytest.mark.parametrize('bad', [-1, 2 ** 31 * 10 ** 9, 1.5, True, '5'])
def test_ns_to_stamp_rejects(bad):
    with pytest.raises(InvalidCoordinateError):
        ns_to_stamp(bad)


def test_to_ros_ns_rejects_nan():
    with pytest.raises(InvalidCoordinateError, match='finite'):
        FleetTimeBase(epoch_ns=0).to_ros_ns(float('nan'))


def test_stamp_to_ns_reads_message_fields():
    assert stamp_to_ns(TimeMsg(sec=2, nanosec=5)) == 2_000_000_005
