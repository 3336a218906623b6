"""Fault injection across real processes: 16 peers under loss, duplication and reordering,
and a receiver killed and restarted mid-stream."""

from __future__ import annotations

import collections
import json
import os
import signal
import time
from pathlib import Path

import pytest

from mapl_robotics.mesh import write_keypair

PEER_COUNT = 16


def read_lines(path: Path) -> list[list[str]]:
    if not path.exists():
        return []
    return [line.split() for line in path.read_text().splitlines() if line.strip()]


def node_args(mapl, node_id, ports, key_folder, extra):
    args = mapl('--log-level', 'warning', 'mesh', 'node', '--id', node_id,
                '--bind', f'tcp://127.0.0.1:{ports[node_id]}', '--keys-dir', str(key_folder))
    for other, other_port in ports.items():
        if other != node_id:
            args += ['--peer', f'{other}=tcp://127.0.0.1:{other_port}']
    return args + list(extra)


def wait_exit(process, timeout_s):
    deadline_s = time.monotonic() + timeout_s
    while process.poll() is None and time.monotonic() < deadline_s:
        time.sleep(0.05)
    return process.poll()


@pytest.mark.timeout(180)
def test_sixteen_peers_lossy_exactly_once(tmp_path, mapl, port, processes):
    ids = [f'r{index:02d}' for index in range(PEER_COUNT)]
    key_folder = tmp_path / 'keys'
    for node_id in ids:
        write_keypair(key_folder, node_id)
    ports = {node_id: port() for node_id in ids}
    start_at_s = time.time() + 8.0
    started = {}
    for index, node_id in enumerate(ids):
        extra = ['--drop-p', '0.1', '--duplicate-p', '0.05', '--reorder-p', '0.05',
                 '--delay-p', '0.05', '--max-delay-ms', '5', '--seed', str(100 + index),
                 '--send-s', '2', '--linger-s', '1', '--deadline-ms', '10000',
                 '--start-at-unix-s', f'{start_at_s:.3f}', '--plan-count', '20',
                 '--state-hz', '10',
                 '--delivered-log', str(tmp_path / f'{node_id}.delivered'),
                 '--acked-log', str(tmp_path / f'{node_id}.acked'),
                 '--metrics-json', str(tmp_path / f'{node_id}.json')]
        started[node_id] = processes(node_args(mapl, node_id, ports, key_folder, extra),
                                     stderr_path=tmp_path / f'{node_id}.err')
    for node_id, process in started.items():
        code = wait_exit(process, 120)
        assert code == 0, (node_id, (tmp_path / f'{node_id}.err').read_text()[-2000:])

    summaries = {node_id: json.loads((tmp_path / f'{node_id}.json').read_text())
                 for node_id in ids}
    delivered = {node_id: read_lines(tmp_path / f'{node_id}.delivered') for node_id in ids}
    total_acked = 0
    for sender in ids:
        summary = summaries[sender]
        assert summary['failed'] == 0, sender
        assert summary['acked'] == summary['sent'], sender
        assert summary['duplicates_delivered'] == 0, sender
        acked = collections.defaultdict(set)
        for peer, kind, number in read_lines(tmp_path / f'{sender}.acked'):
            acked[peer].add((kind, number))
        total_acked += sum(len(entries) for entries in acked.values())
        for receiver in ids:
            if receiver == sender:
                continue
            from_sender = [(kind, number) for who, kind, number, _ in delivered[receiver]
                           if who == sender]
            counts = collections.Counter(from_sender)
            assert all(count == 1 for count in counts.values()), (sender, receiver)
            missing = acked[receiver] - set(counts)
            assert not missing, (sender, receiver, sorted(missing)[:5])
            for kind in ('plan', 'state'):
                numbers = [int(number) for k, number in from_sender if k == kind]
                assert numbers == sorted(numbers), (sender, receiver, kind)
    # 15 targets x (20 plans + about 20 state updates) from each of the 16 peers.
    assert total_acked >= PEER_COUNT * 15 * 35
    counters = collections.Counter()
    for summary in summaries.values():
        counters.update(summary['metrics']['counters'])
    assert counters['fault_dropped'] > 0
    assert counters['fault_duplicated'] > 0
    assert counters['fault_delayed'] > 0
    assert counters['retransmissions'] > 0
    assert counters['duplicates_dropped'] > 0


@pytest.mark.timeout(120)
def test_restarted_receiver_loses_nothing_acknowledged(tmp_path, mapl, port, processes):
    """Receiver b is SIGKILLed mid-stream and restarted on the same port with the same key.

    Every message that a saw acknowledged must be in b's delivered log of the incarnation
    that acknowledged it. The deadline is longer than the outage, so every message must end
    up acknowledged.
    """
    ids = ['a', 'b']
    key_folder = tmp_path / 'keys'
    for node_id in ids:
        write_keypair(key_folder, node_id)
    ports = {node_id: port() for node_id in ids}

    def start_receiver(incarnation: int):
        return processes(node_args(mapl, 'b', ports, key_folder, [
            '--delivered-log', str(tmp_path / f'b{incarnation}.delivered')]),
            stderr_path=tmp_path / f'b{incarnation}.err')

    receiver = start_receiver(1)
    sender = processes(node_args(mapl, 'a', ports, key_folder, [
        '--send-s', '3', '--linger-s', '0.5', '--deadline-ms', '4000', '--plan-count', '300',
        '--acked-log', str(tmp_path / 'a.acked'),
        '--metrics-json', str(tmp_path / 'a.json')]),
        stderr_path=tmp_path / 'a.err')
    first_log = tmp_path / 'b1.delivered'
    deadline_s = time.monotonic() + 60
    while len(read_lines(first_log)) < 60 and time.monotonic() < deadline_s:
        time.sleep(0.01)
    assert len(read_lines(first_log)) >= 60
    os.killpg(receiver.pid, signal.SIGKILL)
    receiver.wait(timeout=10)
    time.sleep(0.3)
    restarted = start_receiver(2)
    assert wait_exit(sender, 60) == 0, (tmp_path / 'a.err').read_text()[-2000:]
    os.killpg(restarted.pid, signal.SIGTERM)
    assert wait_exit(restarted, 20) == 0

    summary = json.loads((tmp_path / 'a.json').read_text())
    assert summary['sent'] == 300
    assert summary['failed'] == 0
    assert summary['acked'] == 300
    acked = {(kind, number) for _, kind, number in read_lines(tmp_path / 'a.acked')}
    first = [(kind, number) for _, kind, number, _ in read_lines(first_log)]
    second = [(kind, number) for _, kind, number, _ in
              read_lines(tmp_path / 'b2.delivered')]
    assert len(first) == len(set(first))
    assert len(second) == len(set(second))
    assert second, 'the restarted receiver got nothing'
    assert acked <= set(first) | set(second)
    assert len(acked) == 300
