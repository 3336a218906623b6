"""Simulator modules import PyBullet without its build-time banner."""

from __future__ import annotations

import subprocess
import sys

import pytest

BANNER = 'pybullet build time'


@pytest.mark.timeout(60)
@pytest.mark.parametrize('module', ['mapl_robotics.sim.world', 'mapl_robotics.sim.robots',
                                    'mapl_robotics.sim.moving'])
def test_import_prints_no_banner(module):
    # A fresh interpreter, because PyBullet prints the banner only on its first import.
    result = subprocess.run(
        [sys.executable, '-c',
         f'import {module}, sys; print(sys.modules["pybullet"].DIRECT)'],
        capture_output=True, text=True, timeout=60.0, check=False)
    assert result.returncode == 0, result.stderr
    assert BANNER not in result.stdout
    assert BANNER not in result.stderr
    # Output printed after the import still reaches stdout, so the descriptor was restored.
    assert result.stdout.strip() == '2'

