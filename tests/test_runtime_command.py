"""Child processes run this process's mapl_robotics, not one in their working folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mapl_robotics
from mapl_robotics.runtime import python_module_command


def _write_decoy_package(folder):
    """Create a mapl_robotics package in ``folder`` whose CLI prints DECOY."""
    package = folder / 'mapl_robotics'
    (package / 'cli').mkdir(parents=True)
    (package / '__init__.py').write_text('')
    (package / 'cli' / '__init__.py').write_text('')
    (package / 'cli' / '__main__.py').write_text('print("DECOY")\n')


def test_plain_module_run_imports_working_folder(tmp_path):
    _write_decoy_package(tmp_path)
    result = subprocess.run([sys.executable, '-m', 'mapl_robotics.cli', '--help'],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == 'DECOY'


def test_module_command_ignores_working_folder(tmp_path):
    _write_decoy_package(tmp_path)
    result = subprocess.run(python_module_command('mapl_robotics.cli', '--help'),
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert 'DECOY' not in result.stdout
    assert 'Usage' in result.stdout


def test_module_command_keeps_exit_status(tmp_path):
    result = subprocess.run(python_module_command('mapl_robotics.cli', 'no-such-command'),
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert 'no-such-command' in result.stderr


def test_module_command_puts_package_parent_first():
    command = python_module_command('mapl_robotics.cli')
    package_parent = str(Path(mapl_robotics.__file__).resolve().parent.parent)
    assert command[0] == sys.executable
    assert repr(package_parent) in command[2]
