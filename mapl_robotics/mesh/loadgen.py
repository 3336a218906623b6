"""Traffic generator for one mesh peer process, used by ``mapl mesh node``, tests and bench.

A load node sends state updates at a fixed rate and bursts of plan messages to its targets.
It logs every acknowledged and every delivered message to files, one line each, flushed at
once so that the lines survive a SIGKILL. When it stops it writes its metrics and latency
samples as JSON. Tests compare the logs across processes: every acknowledged message must
appear in the receiver's delivered log, and no message may appear there twice.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import resource
import threading
import time
from concurrent.futures import Future
from pathlib import Path

from tqdm import tqdm

from mapl_robotics.errors import DeliveryFailedError
from mapl_robotics.mesh.node import MeshNode
from mapl_robotics.mesh.schema import Message, Priority

__all__ = ['DeliveryRecorder', 'LoadSettings', 'run_load']

_log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class LoadSettings:
    """Load schedule of one node: targets, rates, sizes and durations (in seconds).

    ``state_hz``: state updates per second to every target (0 for none). Every
    ``plan_burst_period_s`` a burst of ``plan_burst_size`` plan messages of
    ``plan_payload_bytes`` goes to every target. ``plan_count`` > 0 instead sends exactly
    that many plan messages per target, spread evenly over ``send_s``. The first plan
    burst leaves ``plan_phase_s`` after the start of sending.
    """

    targets: tuple[str, ...] = ()
    send_s: float = 2.0
    linger_s: float = 1.0
    start_at_unix_s: float | None = None
    wait_peers_s: float = 30.0
    state_hz: float = 0.0
    state_payload_bytes: int = 200
    plan_burst_period_s: float = 0.0
    plan_burst_size: int = 0
    plan_phase_s: float = 0.0
    plan_payload_bytes: int = 2000
    plan_count: int = 0
    deadline_s: float = 0.1
    delivered_log: str | None = None
    acked_log: str | None = None
    metrics_json: str | None = None
    flush_lines: bool = True
    progress: bool = False


class _LineLog:
    """Append-only line file; ``flush_lines`` makes every line survive a SIGKILL."""

    def __init__(self, path: str | None, *, flush_lines: bool = True) -> None:
        self._file = None if path is None else open(path, 'a', encoding='utf-8')
        self._flush_lines = flush_lines
        self._lock = threading.Lock()

    def write(self, line: str) -> None:
        if self._file is None:
            return
        with self._lock:
            self._file.write(line + '\n')
            if self._flush_lines:
                self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class DeliveryRecorder:
    """Subscribe to a node, log each delivered message and count duplicate deliveries.

    A duplicate is the same (sender, sender session, kind, number) delivered twice to this
    process.
    """

    def __init__(self, node: MeshNode, path: str | None, *, flush_lines: bool = True) -> None:
        self.delivered = 0
        self.duplicates = 0
        self._log = _LineLog(path, flush_lines=flush_lines)
        self._seen: set[tuple] = set()
        self._lock = threading.Lock()
        node.subscribe(self._on_message)

    def _on_message(self, message: Message) -> None:
        number = message.payload.get('n') if isinstance(message.payload, dict) else None
        key = (message.sender, message.session, message.kind, number)
        with self._lock:
            self.delivered += 1
            if key in self._seen:
                self.duplicates += 1
            self._seen.add(key)
        self._log.write(f'{message.sender} {message.kind} {number} {message.session}')

    def close(self) -> None:
        self._log.close()


def run_load(node: MeshNode, settings: LoadSettings, *,
             stop: threading.Event | None = None) -> dict:
    """Run the load described by ``settings`` on a started node; return a summary dict.

    Setting ``stop`` ends every wait and the send phase early; the summary then covers what
    was sent until then.
    """
    stop = stop if stop is not None else threading.Event()
    recorder = DeliveryRecorder(node, settings.delivered_log,
                                flush_lines=settings.flush_lines)
    acked_log = _LineLog(settings.acked_log, flush_lines=settings.flush_lines)
    summary = {'node': node.node_id, 'session': node.session, 'sent': 0, 'acked': 0,
               'failed': 0, 'latency_ms': {'state': [], 'plan': []}}
    lock = threading.Lock()

    if not _wait_for_peers(node, settings, stop) and not stop.is_set():
        _log.warning('node %s: not every peer came alive within %.1f s; sending anyway',
                     node.node_id, settings.wait_peers_s)
    if settings.start_at_unix_s is not None:
        stop.wait(max(0.0, settings.start_at_unix_s - time.time()))
    targets = list(settings.targets) or node.peers
    # Only unresolved futures are kept, so memory and garbage-collector work stay bounded by
    # the messages in flight instead of growing with the length of the run.
    outstanding: set[Future] = set()
    settled = threading.Condition(lock)

    def on_done(peer: str, kind: str, number: int, future: Future) -> None:
        with settled:
            outstanding.discard(future)
            if not outstanding:
                settled.notify_all()
        try:
            report = future.result()
        except DeliveryFailedError:
            with lock:
                summary['failed'] += 1
            return
        acked_log.write(f'{peer} {kind} {number}')
        with lock:
            summary['acked'] += 1
            summary['latency_ms'][kind].append(report.latency_s * 1e3)

    def send_all(kind: str, priority: Priority, number: int, pad_bytes: int) -> None:
        payload = {'n': number, 'pad': b'\0' * pad_bytes}
        sent = node.broadcast(kind, payload, priority=priority, deadline_s=settings.deadline_s,
                              peer_ids=targets)
        with lock:
            outstanding.update(sent.values())
        for peer, future in sent.items():
            future.add_done_callback(lambda f, p=peer: on_done(p, kind, number, f))
        summary['sent'] += len(sent)

    cpu_start_s = time.process_time()
    threads_start = _thread_cpu()
    iterations_start = node._engine.iterations
    counters_start = node.metrics_registry.snapshot()['counters']
    _generate(settings, send_all, stop)
    # CPU of the whole process (every thread) during the send phase only: steady-state cost
    # of the load, without imports, key loading, connection set-up or the linger phase.
    summary['cpu_send_phase_s'] = time.process_time() - cpu_start_s
    threads_end = _thread_cpu()
    summary['loop_iterations'] = node._engine.iterations - iterations_start
    counters_end = node.metrics_registry.snapshot()['counters']
    summary['counters_send_phase'] = {key: value - counters_start.get(key, 0)
                                      for key, value in counters_end.items()}
    summary['thread_cpu_s'] = {name: round(threads_end[name] - threads_start.get(name, 0.0), 3)
                               for name in threads_end}
    wait_until_s = time.monotonic() + settings.deadline_s + settings.linger_s
    with settled:
        # In slices, so that a stop request is seen within a tenth of a second.
        while outstanding and not stop.is_set() and time.monotonic() < wait_until_s:
            settled.wait(timeout=min(0.1, max(0.0, wait_until_s - time.monotonic())))
    # Every load node stops at the same offset after its send phase, so peers with aligned
    # start times keep serving each other's retries until all of them are done.
    stop.wait(max(0.0, wait_until_s - time.monotonic()))
    summary['metrics'] = node.metrics()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    summary['cpu_s'] = usage.ru_utime + usage.ru_stime
    summary['delivered'] = recorder.delivered
    summary['duplicates_delivered'] = recorder.duplicates
    recorder.close()
    acked_log.close()
    if settings.metrics_json is not None:
        Path(settings.metrics_json).write_text(json.dumps(summary), encoding='utf-8')
    return summary


def _thread_cpu() -> dict:
    """CPU seconds used so far by each thread of this process, keyed ``name:tid`` (Linux)."""
    out = {}
    if not os.path.isdir('/proc/self/task'):
        return out
    for tid in os.listdir('/proc/self/task'):
        try:
            with open(f'/proc/self/task/{tid}/stat') as f:
                text = f.read()
        except OSError:
            continue
        name = text[text.index('(') + 1:text.rindex(')')]
        fields = text[text.rindex(')') + 2:].split()
        out[name + ':' + tid] = (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')
    return out


def _wait_for_peers(node: MeshNode, settings: LoadSettings, stop: threading.Event) -> bool:
    """Wait until the targets are alive, for at most ``settings.wait_peers_s`` or a stop."""
    limit_s = time.monotonic() + settings.wait_peers_s
    while not stop.is_set():
        left_s = limit_s - time.monotonic()
        if node.wait_for_peers(settings.targets or None, timeout_s=max(0.0, min(0.1, left_s))):
            return True
        if left_s <= 0:
            return False
    return False


def _generate(settings: LoadSettings, send_all, stop: threading.Event) -> None:
    """Drive the send schedule for ``settings.send_s`` seconds (bounded by its own clock)."""
    start_s = time.monotonic()
    end_s = start_s + settings.send_s
    state_period_s = 1.0 / settings.state_hz if settings.state_hz > 0 else None
    plan_period_s = None
    if settings.plan_count > 0:
        plan_period_s = settings.send_s / settings.plan_count
    elif settings.plan_burst_period_s > 0 and settings.plan_burst_size > 0:
        plan_period_s = settings.plan_burst_period_s
    next_state_s = start_s
    next_plan_s = start_s + settings.plan_phase_s
    state_number = plan_number = 0

    progress = tqdm(total=settings.send_s, unit='s', disable=not settings.progress,
                    desc='sending')
    while not stop.is_set():
        now_s = time.monotonic()
        if now_s >= end_s:
            break
        if state_period_s is not None and now_s >= next_state_s:
            state_number += 1
            send_all('state', Priority.STATE, state_number, settings.state_payload_bytes)
            next_state_s += state_period_s
        if plan_period_s is not None and now_s >= next_plan_s:
            if settings.plan_count > 0:
                if plan_number < settings.plan_count:
                    plan_number += 1
                    send_all('plan', Priority.PLAN, plan_number, settings.plan_payload_bytes)
            else:
                for _ in range(settings.plan_burst_size):
                    plan_number += 1
                    send_all('plan', Priority.PLAN, plan_number, settings.plan_payload_bytes)
            next_plan_s += plan_period_s

        due_s = [end_s]
        if state_period_s is not None:
            due_s.append(next_state_s)
        if plan_period_s is not None:
            due_s.append(next_plan_s)
        progress.n = round(min(now_s - start_s, settings.send_s), 1)
        progress.refresh()
        stop.wait(max(0.0, min(due_s) - time.monotonic()))
    progress.close()
