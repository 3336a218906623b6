"""``mapl sim`` stopped by SIGTERM or SIGKILL leaves no agent or ledger node process behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mapl_robotics.runtime import remove_stale_temp_dirs

MAPL = Path(sys.executable).with_name('mapl')
_AGENT_MODULE = 'mapl_robotics.sim.agent_process'


def _session_processes(session_id: int) -> dict[int, str]:
    """Return the live (not zombie) processes of a session as ``{pid: command line}``."""
    found = {}
    for entry in Path('/proc').iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / 'stat').read_text()
            command = (entry / 'cmdline').read_bytes().replace(b'\0', b' ').decode()
        except OSError:
            continue
        # The command name in field 2 may contain spaces, so the fields after it are split
        # from its closing bracket. After that split, the state is field 3 of the line and
        # the session id is field 6.
        fields = stat[stat.rindex(')') + 2:].split()
        if int(fields[3]) == session_id and fields[0] != 'Z':
            found[int(entry.name)] = command
    return found


def _wait_until_gone(session_id: int, *, timeout_s: float) -> dict[int, str]:
    """Poll until no process of the session remains; return those still alive at the end."""
    deadline = time.monotonic() + timeout_s
    remaining = _session_processes(session_id)
    while remaining and time.monotonic() < deadline:
        time.sleep(0.1)
        remaining = _session_processes(session_id)
    return remaining


@contextlib.contextmanager
def _four_way_run(tmp_path: Path):
    """Start ``mapl sim --scenario four_way`` in its own session; SIGKILL it all at the end."""
    temp_dir = tmp_path / 'tmp'
    temp_dir.mkdir()
    log_path = tmp_path / 'mapl.log'
    with open(log_path, 'wb') as log:
        process = subprocess.Popen(
            [str(MAPL), '--log-level', 'info', 'sim', '--scenario', 'four_way', '--no-progress',
             '--out', str(tmp_path / 'out')],
            cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, 'TMPDIR': str(temp_dir)})
    try:
        yield process, log_path, temp_dir
    finally:
        # The session id is the mapl pid, and every process of the run is in its group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        _wait_until_gone(process.pid, timeout_s=10.0)


def _wait_for_agents(process: subprocess.Popen, log_path: Path) -> dict[int, str]:
    """Wait until the run logs that all agents registered; return the agent processes."""
    deadline = time.monotonic() + 240.0
    while 'all 4 agents registered' not in log_path.read_text(errors='replace'):
        assert process.poll() is None, log_path.read_text(errors='replace')
        assert time.monotonic() < deadline, 'agents did not register within 240 s'
        time.sleep(0.2)
    return {pid: command for pid, command in _session_processes(process.pid).items()
            if _AGENT_MODULE in command}


@pytest.mark.timeout(300)
def test_sigterm_stops_whole_run(tmp_path):
    with _four_way_run(tmp_path) as (process, log_path, temp_dir):
        agents = _wait_for_agents(process, log_path)
        assert len(agents) == 4
        assert len(list(temp_dir.glob('mapl-clock-*'))) == 1
        assert len(list(temp_dir.glob('mapl-ledger-*'))) == 1

        process.send_signal(signal.SIGTERM)
        status = process.wait(timeout=60)
        remaining = _wait_until_gone(process.pid, timeout_s=5.0)

        assert remaining == {}
        assert status == 128 + signal.SIGTERM
        assert list(temp_dir.glob('mapl-clock-*')) == []
        assert list(temp_dir.glob('mapl-ledger-*')) == []
        output = log_path.read_text(errors='replace')
        assert 'received SIGTERM; stopped the agents and ledger nodes' in output
        assert 'Traceback' not in output


@pytest.mark.timeout(300)
def test_ctrl_c_stops_whole_run(tmp_path):
    with _four_way_run(tmp_path) as (process, log_path, temp_dir):
        _wait_for_agents(process, log_path)

        # A terminal's Ctrl-C sends SIGINT to the whole foreground process group.
        os.killpg(process.pid, signal.SIGINT)
        status = process.wait(timeout=60)
        remaining = _wait_until_gone(process.pid, timeout_s=5.0)

        assert remaining == {}
        assert status == 128 + signal.SIGINT
        assert list(temp_dir.glob('mapl-*')) == []
        output = log_path.read_text(errors='replace')
        assert 'mapl sim: interrupted; stopped the agents and ledger nodes' in output
        assert 'Aborted!' not in output


@pytest.mark.timeout(300)
def test_agents_exit_after_sigkill(tmp_path):
    with _four_way_run(tmp_path) as (process, log_path, temp_dir):
        agents = _wait_for_agents(process, log_path)
        assert len(agents) == 4

        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
        remaining = _wait_until_gone(process.pid, timeout_s=5.0)

        assert remaining == {}
        agent_log = (tmp_path / 'out' / 'logs' / 'north.log').read_text(errors='replace')
        assert 'is gone; stopping' in agent_log
        assert 'without clean-up' not in agent_log
        # The killed run could not remove its temporary folders. They carry its pid, so a
        # later run removes them once they are a minute old.
        left_behind = sorted(path.name for path in temp_dir.glob('mapl-*'))
        assert [name.split('-')[1] for name in left_behind] == ['clock', 'ledger']
        assert all(name.split('-')[2] == str(process.pid) for name in left_behind)
        for path in temp_dir.glob('mapl-*'):
            stamp = time.time() - 120.0
            os.utime(path, (stamp, stamp))
        removed = remove_stale_temp_dirs(root=temp_dir)
        assert sorted(path.name for path in removed) == left_behind
        assert list(temp_dir.glob('mapl-*')) == []
