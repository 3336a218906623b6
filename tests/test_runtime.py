"""Process helpers: children run this mapl_robotics, and stale temporary folders go."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import mapl_robotics
from mapl_robotics.runtime import (private_temp_dir, python_module_command,
                                   remove_stale_temp_dirs)


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


def _dead_pid() -> int:
    """Return the pid of a process that has exited."""
    process = subprocess.Popen([sys.executable, '-c', 'pass'])
    process.wait(timeout=60)
    return process.pid


def _age(path, seconds: float) -> None:
    stamp = time.time() - seconds
    os.utime(path, (stamp, stamp))


def test_stale_temp_dirs_of_dead_processes_removed(tmp_path):
    dead = tmp_path / f'mapl-ledger-{_dead_pid()}-abc123'
    dead.mkdir()
    (dead / 'journal').write_text('x')
    _age(dead, 120.0)
    alive = tmp_path / f'mapl-clock-{os.getpid()}-def456'
    alive.mkdir()
    _age(alive, 120.0)
    fresh = tmp_path / f'mapl-ledger-r0-{_dead_pid()}-ghi789'
    fresh.mkdir()
    other = tmp_path / 'mapl-ledger-nopid'
    other.mkdir()
    _age(other, 120.0)
    removed = remove_stale_temp_dirs(root=tmp_path)
    assert removed == [dead]
    assert not dead.exists()
    assert alive.exists()
    assert fresh.exists()
    assert other.exists()


def test_private_temp_dir_names_owner(tmp_path):
    folder = private_temp_dir('clock')
    try:
        assert folder.is_dir()
        assert folder.name.startswith(f'mapl-clock-{os.getpid()}-')
    finally:
        folder.rmdir()


def test_module_command_keeps_path_order(tmp_path):
    """A package folder already on the path keeps its place; the working folder leaves."""
    probe = tmp_path / 'path_probe.py'
    probe.write_text('import json, sys\nprint(json.dumps(sys.path))\n')
    package_parent = str(Path(mapl_robotics.__file__).resolve().parent.parent)
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join([str(tmp_path), package_parent])}
    result = subprocess.run(python_module_command('path_probe'), cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    child_path = json.loads(result.stdout)
    assert '' not in child_path
    assert child_path.count(package_parent) == 1
    assert child_path.index(str(tmp_path)) < child_path.index(package_parent)
