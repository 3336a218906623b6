"""Process helpers: child commands, temporary folders, parent watch and heap freezing."""

from __future__ import annotations

import gc
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

__all__ = ['freeze_startup_heap', 'python_module_command', 'private_temp_dir',
           'remove_stale_temp_dirs', 'PARENT_PID_ENV', 'watch_parent_from_environment']

_log = logging.getLogger(__name__)


def freeze_startup_heap() -> int:
    """Move every object alive now out of reach of the cyclic garbage collector.

    Call once, after imports and set-up, before the process starts its real-time work. The
    collector tracks about 90,000 objects in a mesh or agent process, and each full
    collection walks all of them: 23 ms of CPU time on an idle machine, 40 to 50 ms in a
    16-node mesh on two cores. The nodes allocate alike, so they collected at nearly the same
    moment and delivery stalled for up to half a second. Frozen objects are still freed by
    reference counting. Only garbage cycles among them would stay. Returns the number of
    objects frozen.
    """
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    _log.debug('froze %d start-up objects out of the garbage collector', frozen)
    return frozen


def python_module_command(module: str, *args: str) -> list[str]:
    """Return a command line that runs ``module`` as ``__main__`` with this mapl_robotics.

    ``python -m`` and ``python -c`` put the working folder first on ``sys.path``. A child
    process started from a source checkout would then import the checkout's mapl_robotics
    instead of the installed copy that started it: possibly other code, and always another
    numba cache, so each child compiled the planner's kernels again. The command takes the
    working folder off the path and puts the folder that contains this package on it.
    """
    package_parent = str(Path(__file__).resolve().parent.parent)
    # The working folder ('' for python -c) leaves the path. The package's folder goes first
    # only when it is not on the path already, so an installed package's site-packages keeps
    # its place after the standard library.
    bootstrap = ('import runpy, sys\n'
                 "if sys.path and sys.path[0] == '':\n"
                 '    del sys.path[0]\n'
                 f'if {package_parent!r} not in sys.path:\n'
                 f'    sys.path.insert(0, {package_parent!r})\n'
                 f'runpy.run_module({module!r}, run_name="__main__", alter_sys=True)\n')
    return [sys.executable, '-c', bootstrap, *args]


_TEMP_PREFIX = 'mapl-'
_STALE_AFTER_S = 60.0


def private_temp_dir(kind: str) -> Path:
    """Create a temporary folder ``mapl-<kind>-<pid>-<random>`` for this process.

    The owner removes it when it closes. A process killed with SIGKILL cannot, so the next
    call removes the folders of such processes (see :func:`remove_stale_temp_dirs`).
    """
    remove_stale_temp_dirs()
    return Path(tempfile.mkdtemp(prefix=f'{_TEMP_PREFIX}{kind}-{os.getpid()}-'))


def remove_stale_temp_dirs(*, root: Path | None = None) -> list[Path]:
    """Remove folders made by :func:`private_temp_dir` whose process no longer runs.

    Only folders older than a minute are touched, so a folder that another process is still
    creating is left alone. Returns the removed folders.
    """
    root = Path(tempfile.gettempdir()) if root is None else root
    removed = []
    now_s = time.time()
    for path in root.glob(f'{_TEMP_PREFIX}*-*-*'):
        pid = _owner_pid(path.name)
        if pid is None or _process_exists(pid):
            continue
        try:
            if not path.is_dir() or path.is_symlink() or \
                    now_s - path.stat().st_mtime < _STALE_AFTER_S:
                continue
            if path.stat().st_uid != os.getuid():
                continue
        except OSError:
            continue
        shutil.rmtree(path, ignore_errors=True)
        _log.info('removed %s, left behind by process %d, which no longer runs', path, pid)
        removed.append(path)
    return removed


def _owner_pid(name: str) -> int | None:
    """Return the pid in a folder name ``mapl-<kind>-<pid>-<random>``, or None."""
    parts = name.split('-')
    if len(parts) < 4 or parts[0] + '-' != _TEMP_PREFIX:
        return None
    for part in parts[2:-1]:
        if part.isdigit():
            return int(part)
    return None


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# Set by a supervisor in its children's environment: the pid whose death stops the child.
PARENT_PID_ENV = 'MAPL_PARENT_PID'
_PARENT_CHECK_PERIOD_S = 0.5
_ORPHAN_GRACE_S = 10.0


def watch_parent_from_environment() -> int | None:
    """Stop this process when the supervisor named in ``MAPL_PARENT_PID`` is gone.

    Children that a supervisor starts in sessions of their own (``mapl fleet`` does) get no
    signal when the supervisor is killed with SIGKILL, and would keep running with their ports
    held. A daemon thread compares :func:`os.getppid` with that pid, and once they differ it
    sends this process SIGTERM, so the usual clean shutdown runs. A process still alive 10 s
    later exits at once. The variable is removed from the environment, so this process's own
    children are not watched against the wrong parent. Returns the watched pid, or None.
    """
    value = os.environ.pop(PARENT_PID_ENV, None)
    if not value:
        return None
    try:
        parent_pid = int(value)
    except ValueError:
        _log.warning('ignoring %s=%r: it must be a process id', PARENT_PID_ENV, value)
        return None
    threading.Thread(target=_watch_parent, args=(parent_pid,), name='parent-watch',
                     daemon=True).start()
    return parent_pid


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(_PARENT_CHECK_PERIOD_S)
    _log.warning('supervisor process %d is gone; stopping this process with SIGTERM',
                 parent_pid)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(_ORPHAN_GRACE_S)
    _log.error('still running %.0f s after SIGTERM, with supervisor process %d gone; '
               'exiting without clean-up', _ORPHAN_GRACE_S, parent_pid)
    logging.shutdown()
    os._exit(1)
