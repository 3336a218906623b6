"""``mapl fleet``: start a ROS 2 fleet (agent nodes, fleet node, optional simulator) as
subprocesses, without the ``ros2`` command, and stop it cleanly on Ctrl-C or SIGTERM."""

from __future__ import annotations

import logging
import shlex
import signal
import sys
import time
from pathlib import Path

import click

from mapl_robotics.cli import main

_LOG = logging.getLogger(__name__)

_POLL_PERIOD_S = 0.2


@main.command('fleet')
@click.option('--robots', default='2', show_default=True,
              help='Number of robots, or names with start poses: '
                   '"alpha={x: 0.0, y: 1.0}; beta={x: 2.0, y: 1.0}".')
@click.option('--map', 'map_path', default=None,
              help='Map file (map_server YAML); relative names are looked up among the bundled '
                   'maps. Default: the spec\'s map, else maps/ros/turtlebot3_world.yaml.')
@click.option('--spec', 'spec_path', type=click.Path(exists=True, dir_okay=False),
              default=None, help='MAPL fleet spec (JSON or YAML).')
@click.option('--params-file', type=click.Path(exists=True, dir_okay=False), default=None,
              help='ROS 2 parameters file applied to every node.')
@click.option('--use-sim-time/--no-use-sim-time', default=False, show_default=True,
              help='Nodes follow /clock instead of the system clock.')
@click.option('--sim/--no-sim', default=False, show_default=True,
              help='Also start the PyBullet simulator bridge (odom, tf, cmd_vel).')
@click.option('--ros-log-level', type=click.Choice(['debug', 'info', 'warn', 'error', 'fatal']),
              default='info', show_default=True, help='Log level of the nodes.')
@click.option('--respawn/--no-respawn', default=False, show_default=True,
              help='Restart a node that exits (at most 10 times each).')
@click.option('--seed', type=click.IntRange(min=0), default=0, show_default=True,
              help='Planner seed (robot i uses seed + i) and start-pose seed.')
@click.option('--ledger-base-port', type=click.IntRange(1, 64535), default=None,
              help='First Raft port of the ledger replicas; each also uses its port + 1000 for '
                   'clients. Default: the spec\'s, else 47100.')
@click.option('--mesh-base-port', type=click.IntRange(1, 65535), default=None,
              help='First mesh port. Default: the spec\'s, else 47500.')
@click.option('--journal-root', type=click.Path(file_okay=False, path_type=Path), default=None,
              help='Folder of the ledger journals. Default: a folder in the temporary '
                   'directory named after the fleet epoch.')
@click.option('--domain-id', type=click.IntRange(0, 232), default=None,
              help='ROS_DOMAIN_ID for every node. Default: the inherited environment.')
@click.option('--duration', 'duration_s', type=click.FloatRange(min=0.0), default=0.0,
              help='Stop after this many seconds; 0 runs until Ctrl-C or SIGTERM.')
@click.option('--dry-run', is_flag=True, help='Print the command lines and exit.')
def fleet(robots: str, map_path: str | None, spec_path: str | None, params_file: str | None,
          use_sim_time: bool, sim: bool, ros_log_level: str, respawn: bool, seed: int,
          ledger_base_port: int | None, mesh_base_port: int | None, journal_root: Path | None,
          domain_id: int | None, duration_s: float, dry_run: bool) -> None:
    """Start a fleet's ROS 2 nodes as subprocesses and supervise them.

    DDS discovery stays on this host (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST) unless the
    environment already sets ROS_AUTOMATIC_DISCOVERY_RANGE.
    """
    from mapl_robotics.ros.launch_description import fleet_node_descriptions
    from mapl_robotics.ros.supervisor import FleetSupervisor, loopback_environment

    descriptions = fleet_node_descriptions(
        robots=robots, map_path=map_path, spec_path=Path(spec_path) if spec_path else None,
        params_file=params_file, use_sim_time=use_sim_time, sim=sim, log_level=ros_log_level,
        use_respawn=respawn, seed=seed, ledger_base_port=ledger_base_port,
        mesh_base_port=mesh_base_port, journal_root=journal_root)
    supervisor = FleetSupervisor(descriptions,
                                 environment=loopback_environment(domain_id=domain_id))
    if dry_run:
        for managed in supervisor.processes:
            click.echo(shlex.join(managed.command))
        return

    stop_requested = []

    def request_stop(signal_number, _frame) -> None:
        stop_requested.append(signal_number)

    previous = {number: signal.signal(number, request_stop)
                for number in (signal.SIGINT, signal.SIGTERM)}
    click.echo(f'starting {len(descriptions)} processes: '
               + ', '.join(d.fully_qualified_name for d in descriptions), err=True)
    supervisor.start()
    deadline_s = time.monotonic() + duration_s if duration_s > 0 else None
    broken = []
    try:
        while not stop_requested:
            finished = supervisor.poll()
            # A node that failed and will not restart leaves a fleet that cannot work (no
            # simulator, a robot without its agent), so the whole fleet stops.
            broken = [managed.description.fully_qualified_name for managed in finished
                      if managed.process.returncode not in (0, None)]
            if broken:
                _LOG.error('%s exited with an error and will not restart; stopping the fleet '
                           '(see its log lines above)', ', '.join(broken))
                break
            if finished and not supervisor.running():
                _LOG.error('every fleet process has exited')
                break
            if deadline_s is not None and time.monotonic() >= deadline_s:
                break
            time.sleep(_POLL_PERIOD_S)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        statuses = supervisor.stop()
    click.echo('stopped: ' + ', '.join(f'{name} ({status})' for name, status in statuses.items()),
               err=True)
    failed = [name for name, status in statuses.items() if status not in (0, -2, None)]
    if broken or (failed and not stop_requested and deadline_s is None):
        sys.exit(1)

