"""mapl fleet's process supervisor (respawn limits, ordered stop) and the cmd_vel tracker."""

from __future__ import annotations

import math
import sys
import time

import pytest

from mapl_robotics.geometry import Trajectory
from mapl_robotics.ros.controller import track
from mapl_robotics.ros.launch_description import NodeDescription
from mapl_robotics.ros.supervisor import MAX_RESPAWNS, FleetSupervisor, loopback_environment


def description(name: str, *, respawn: bool) -> NodeDescription:
    return NodeDescription(package='mapl_robotics', executable='agent', name=name,
                           namespace='', respawn=respawn, respawn_delay_s=0.0)


def test_loopback_environment_keeps_user_choice():
    environment = loopback_environment({'ROS_AUTOMATIC_DISCOVERY_RANGE': 'SUBNET'},
                                       domain_id=42)
    assert environment['ROS_AUTOMATIC_DISCOVERY_RANGE'] == 'SUBNET'
    assert environment['ROS_DOMAIN_ID'] == '42'
    assert loopback_environment({})['ROS_AUTOMATIC_DISCOVERY_RANGE'] == 'LOCALHOST'


def test_respawn_is_bounded_and_stop_is_ordered(tmp_path):
    supervisor = FleetSupervisor([description('crashing', respawn=True),
                                  description('sleeping', respawn=False)],
                                 environment=loopback_environment({}))
    crashing, sleeping = supervisor.processes
    crashing.command = [sys.executable, '-c', 'import sys; sys.exit(3)']
    # Exits 0 on SIGINT (Python raises KeyboardInterrupt), as a node does.
    sleeping.command = [sys.executable, '-c',
                        'import time\ntry:\n    time.sleep(60)\nexcept KeyboardInterrupt:\n'
                        '    pass']
    supervisor.start()
    try:
        deadline = time.monotonic() + 60.0
        finished = []
        while time.monotonic() < deadline and not finished:
            finished = supervisor.poll()
            time.sleep(0.05)
        assert [m.description.name for m in finished] == ['crashing']
        assert crashing.respawns == MAX_RESPAWNS
        assert crashing.process.returncode == 3
        assert supervisor.running()
        # Give the sleeping child time to install Python's SIGINT handler.
        time.sleep(1.0)
    finally:
        statuses = supervisor.stop(grace_s=10.0)
    assert statuses == {'/crashing': 3, '/sleeping': 0}
    assert not supervisor.running()


LINE = Trajectory.from_samples([(0.0, 0.0, 0.0, 0.0), (10.0, 5.0, 0.0, 0.0)])


def test_track_follows_feedforward_on_the_plan():
    command = track(LINE, t_s=2.0, x_m=1.0, y_m=0.0, yaw_rad=0.0, gain_per_s=1.0,
                    max_speed_mps=2.0, max_yaw_rate_radps=1.0, differential=False)
    assert command.vx_mps == pytest.approx(0.5)
    assert command.vy_mps == pytest.approx(0.0)


def test_track_corrects_error_within_limits():
    # Holonomic: 1 m to the left of the reference, facing +y, limited to 0.6 m/s.
    command = track(LINE, t_s=2.0, x_m=1.0, y_m=1.0, yaw_rad=math.pi / 2, gain_per_s=2.0,
                    max_speed_mps=0.6, max_yaw_rate_radps=1.0, differential=False)
    assert math.hypot(command.vx_mps, command.vy_mps) == pytest.approx(0.6)
    assert command.vx_mps < 0.0  # backwards in the body frame, toward y = 0
    assert abs(command.yaw_rate_radps) <= 1.0


def test_track_differential_turns_before_driving():
    # Facing away from the plan: turn in place, no forward speed, turn rate limited.
    command = track(LINE, t_s=2.0, x_m=1.0, y_m=0.0, yaw_rad=math.pi, gain_per_s=1.0,
                    max_speed_mps=1.0, max_yaw_rate_radps=0.8, differential=True)
    assert command.vx_mps == 0.0
    assert command.vy_mps == 0.0
    assert abs(command.yaw_rate_radps) == pytest.approx(0.8)


def test_track_without_plan_stops():
    command = track(None, t_s=0.0, x_m=0.0, y_m=0.0, yaw_rad=0.0, gain_per_s=1.0,
                    max_speed_mps=1.0, max_yaw_rate_radps=1.0, differential=True)
    assert (command.vx_mps, command.vy_mps, command.yaw_rate_radps) == (0.0, 0.0, 0.0)
