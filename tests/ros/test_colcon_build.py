"""The package builds with colcon in a workspace, and the installed layout is what ROS expects:
``ros2 run`` finds executables under ``lib/mapl_robotics`` and ``ros2 launch`` finds launch
files under ``share/mapl_robotics``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from nav_msgs.msg import OccupancyGrid

from mapl_robotics.ros import qos
from ros_test_support import NodeProcess

REPO_ROOT = Path(__file__).resolve().parents[2]


def _copy_tracked_files(destination: Path) -> None:
    """Copy the files git tracks (the source a user would clone) into ``destination``."""
    listing = subprocess.run(['git', '-C', str(REPO_ROOT), 'ls-files', '-z'], check=True,
                             capture_output=True).stdout.decode().split('\0')
    for relative in filter(None, listing):
        source = REPO_ROOT / relative
        if source.is_file():
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


@pytest.fixture(scope='module')
def colcon_install(tmp_path_factory) -> Path:
    colcon = shutil.which('colcon') or str(Path(sys.executable).parent / 'colcon')
    if not Path(colcon).exists():
        pytest.fail('colcon is not installed; pip install colcon-core colcon-ros '
                    'colcon-python-setup-py')
    workspace = tmp_path_factory.mktemp('ws')
    _copy_tracked_files(workspace / 'src' / 'mapl_robotics')
    environment = dict(os.environ, COLCON_HOME=str(workspace / '.colcon'))
    result = subprocess.run([colcon, 'build', '--event-handlers', 'console_direct-'],
                            cwd=workspace, env=environment, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return workspace / 'install' / 'mapl_robotics'


def test_installed_layout(colcon_install):
    share = colcon_install / 'share' / 'mapl_robotics'
    assert (share / 'package.xml').is_file()
    assert (share / 'launch' / 'fleet.launch.py').is_file()
    assert (share / 'maps' / 'ros' / 'warehouse.yaml').is_file()
    assert (share / 'maps' / 'ros' / 'warehouse.pgm').is_file()
    assert (share / 'sim').is_dir()
    assert any((share / 'sim').rglob('*.urdf'))
    marker = (colcon_install / 'share' / 'ament_index' / 'resource_index' / 'packages'
              / 'mapl_robotics')
    assert marker.is_file()
    for executable in ('agent', 'fleet', 'mapl'):
        path = colcon_install / 'lib' / 'mapl_robotics' / executable
        assert path.is_file(), f'{executable} missing from lib/mapl_robotics'
        assert os.access(path, os.X_OK)
    site_packages = list((colcon_install / 'lib').glob('python3*/site-packages'))
    assert site_packages and (site_packages[0] / 'mapl_robotics' / 'ros' / 'entry_points.py') \
        .is_file()


def test_installed_fleet_executable_publishes_map(colcon_install, ros_domain, probe,
                                                  tmp_path):
    """Run lib/mapl_robotics/fleet as ``ros2 run`` would: from the install space only."""
    site_packages = next((colcon_install / 'lib').glob('python3*/site-packages'))
    environment = dict(os.environ, PYTHONPATH=str(site_packages),
                       AMENT_PREFIX_PATH=str(colcon_install), PYTHONUNBUFFERED='1')
    fleet = NodeProcess([str(colcon_install / 'lib' / 'mapl_robotics' / 'fleet'),
                         '--ros-args', '-p', "robot_names:=['robot_0']",
                         '-p', "ledger.addresses:=['127.0.0.1:1']",
                         '-p', 'map_yaml:=maps/ros/turtlebot3_world.yaml'],
                        env=environment, log_path=tmp_path / 'fleet.log', cwd=tmp_path)
    try:
        maps = probe.collect(OccupancyGrid, '/map', qos.MAP_QOS)
        assert probe.spin_until(lambda: maps, timeout_s=60.0), fleet.output()
        assert maps[0].info.width > 0
        # The relative map name was found in the install space, not in the source tree.
        assert f"loading map {colcon_install / 'share' / 'mapl_robotics'}" in fleet.output()
    finally:
        assert fleet.stop() == 0, fleet.output()
