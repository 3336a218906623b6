"""Headless PyBullet fleet simulation: scenarios, the runner, metrics and plots.

Typical use::

    from mapl_robotics.sim import RunOptions, load_scenario_file, run_scenario
    result = run_scenario(load_scenario_file('four_way'),
                          RunOptions(out_dir='out/four_way', mode='in-process'))
    print(result.metrics['success'])

Names are imported on first access, so that agent processes, which import
``mapl_robotics.sim.agent_process``, do not load PyBullet and matplotlib.
"""

from __future__ import annotations

import importlib

__all__ = ['FleetSimulation', 'RobotSetup', 'RunOptions', 'RunResult', 'Scenario',
           'SimulationTerminated', 'load_scenario_file', 'movingai_scenario', 'run_scenario']

_LOCATIONS = {
    'FleetSimulation': 'mapl_robotics.sim.engine',
    'RobotSetup': 'mapl_robotics.sim.engine',
    'RunOptions': 'mapl_robotics.sim.runner',
    'RunResult': 'mapl_robotics.sim.runner',
    'run_scenario': 'mapl_robotics.sim.runner',
    'Scenario': 'mapl_robotics.sim.scenario',
    'SimulationTerminated': 'mapl_robotics.sim.termination',
    'load_scenario_file': 'mapl_robotics.sim.scenario',
    'movingai_scenario': 'mapl_robotics.sim.scenario',
}


def __getattr__(name: str):
    module = _LOCATIONS.get(name)
    if module is None:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
