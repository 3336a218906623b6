"""Console scripts ``agent`` and ``fleet``: ``ros2 run mapl_robotics agent --ros-args ...``.

Both accept the usual ``--ros-args`` (remapping, ``-p name:=value``, ``--params-file``,
``--log-level``). They stop cleanly on Ctrl-C or SIGTERM: rclpy's signal handler shuts the
context down, the executor returns, and the node is destroyed before the process exits 0.
``python -m mapl_robotics.ros.entry_points agent ...`` runs the same code without installed
scripts.
"""

from __future__ import annotations

import logging
import sys
from typing import Callable, Sequence

__all__ = ['agent_main', 'fleet_main', 'run_node', 'sim_bridge_main']

_LOG = logging.getLogger(__name__)


def run_node(factory: Callable[[], object], argv: Sequence[str] | None = None) -> int:
    """Initialize rclpy with ``argv``, spin the node that ``factory`` builds until shutdown,
    and clean up. Returns the process exit status."""
    import rclpy
    from rclpy._rclpy_pybind11 import RCLError
    from rclpy.exceptions import ParameterException
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    from mapl_robotics.errors import MaplError
    from mapl_robotics.runtime import freeze_startup_heap, watch_parent_from_environment

    args = list(sys.argv if argv is None else argv)
    if _wants_help(args):
        _print_help(factory, args[0] if args else 'node')
        return 0
    watch_parent_from_environment()
    try:
        rclpy.init(args=args)
    except RCLError as error:
        # Malformed --ros-args: rcl has already logged which rule it could not parse.
        sys.stderr.write(f'error: invalid ROS arguments: {error}\n')
        return 2
    node = None
    status = 0
    try:
        node = factory()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        freeze_startup_heap()
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (MaplError, ParameterException) as error:
        # Invalid parameters or files: report the reason, not a traceback.
        logging.getLogger('mapl_robotics').error('node failed to start: %s', error)
        sys.stderr.write(f'error: {error}\n')
        status = 2
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return status


def _wants_help(args: Sequence[str]) -> bool:
    """Return whether -h or --help comes before any --ros-args."""
    own = args[1:args.index('--ros-args')] if '--ros-args' in args else args[1:]
    return '-h' in own or '--help' in own


def _print_help(factory: Callable[[], object], program: str) -> None:
    summary = (factory.__doc__ or '').strip().splitlines()
    sys.stdout.write(f'usage: {program} [--ros-args [-p NAME:=VALUE ...] [--params-file FILE] '
                     '[-r FROM:=TO ...] [--log-level LEVEL]]\n\n')
    if summary:
        sys.stdout.write(summary[0] + '\n\n')
    sys.stdout.write('Parameters, topics and defaults: docs/ros2.md in the mapl_robotics '
                     'package.\n')


def agent_main(argv: Sequence[str] | None = None) -> int:
    """Run one robot agent node (``ros2 run mapl_robotics agent``)."""
    from mapl_robotics.ros.agent_node import AgentNode
    return run_node(AgentNode, argv)


def fleet_main(argv: Sequence[str] | None = None) -> int:
    """Run the fleet node (``ros2 run mapl_robotics fleet``)."""
    from mapl_robotics.ros.fleet_node import FleetNode
    return run_node(FleetNode, argv)


def sim_bridge_main(argv: Sequence[str] | None = None) -> int:
    """Run the world-only simulator for a ROS fleet (``ros2 run mapl_robotics sim_bridge``)."""
    from mapl_robotics.ros.sim_ros import sim_bridge_main as run
    from mapl_robotics.runtime import watch_parent_from_environment

    watch_parent_from_environment()
    return run(argv)


_COMMANDS = {'agent': agent_main, 'fleet': fleet_main, 'sim_bridge': sim_bridge_main}


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch ``python -m mapl_robotics.ros.entry_points {agent,fleet,sim_bridge} ...``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in _COMMANDS:
        sys.stderr.write('usage: python -m mapl_robotics.ros.entry_points '
                         '{agent,fleet,sim_bridge} [arguments] [--ros-args ...]\n')
        return 2
    if args[0] == 'sim_bridge':
        return sim_bridge_main(args[1:])
    return _COMMANDS[args[0]]([f'mapl-{args[0]}', *args[1:]])


if __name__ == '__main__':
    sys.exit(main())
