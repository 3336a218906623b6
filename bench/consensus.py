"""Benchmark the plan ledger on a 3-node cluster on loopback.

The benchmark measures commit latency, failover, throughput, and lost and conflicting commits.
It runs once with the ledger's tuned Raft settings and once with pysyncobj's defaults.

    python bench/consensus.py --json OUT.json [--kills 50] [--commits 300]

Every node is its own process (``mapl ledger node``). Failover is measured from the SIGKILL of
the leader to the first commit of a proposal sent after the kill; the killed node is then
restarted from its journal and must catch up before the next kill.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import click
import numpy as np
from tqdm import tqdm

from mapl_robotics.coordination import (LedgerClient, LocalCluster, audit_history,
                                        generate_key_pair)
from mapl_robotics.errors import LedgerUnavailableError
from mapl_robotics.geometry import Trajectory

logger = logging.getLogger('bench.consensus')


class LaneRobot:
    """A robot moving back and forth on its own lane (y = 2 * lane), so plans never conflict."""

    def __init__(self, addresses, lane: int, clock, *, attempt_timeout_s: float = 0.05,
                 timeout_s: float = 5.0) -> None:
        private_key, _ = generate_key_pair()
        self.lane = lane
        self.clock = clock
        self.client = LedgerClient(addresses, robot_id=f'r{lane}', private_key=private_key,
                                   timeout_s=timeout_s, attempt_timeout_s=attempt_timeout_s)
        self.trajectory: Trajectory | None = None
        self.target_x_m = 2.0
        self.acknowledged: list[tuple[int, int]] = []

    def register(self) -> None:
        result = self.client.register(radius_m=0.3, max_speed_mps=1.0,
                                      pose=(0.0, 2.0 * self.lane, 0.0), now_s=self.clock())
        self.trajectory = result.trajectory
        self.acknowledged.append(tuple(result.token.to_list()))

    def resync(self) -> None:
        self.trajectory = self.client.read(full=True).robots[f'r{self.lane}'].trajectory

    def propose(self) -> bool:
        """Propose the next leg; return True if it committed."""
        t0_s = self.clock() + 0.3
        start = self.trajectory.position_at(t0_s)
        duration_s = max(abs(self.target_x_m - float(start[0])) / 0.8, 0.05)
        plan = Trajectory.from_samples([(t0_s, float(start[0]), float(start[1]), 0.0),
                                        (t0_s + duration_s, self.target_x_m, 2.0 * self.lane,
                                         0.0)])
        result = self.client.propose(plan, base_version=0, now_s=self.clock())
        if not result.committed:
            self.resync()
            return False
        self.trajectory = result.trajectory
        self.target_x_m = 2.0 - self.target_x_m
        self.acknowledged.append(tuple(result.token.to_list()))
        return True

    def close(self) -> None:
        self.client.close()


def _percentiles(samples_s: list[float]) -> dict:
    values_ms = np.asarray(samples_s) * 1000.0
    return {'p50': round(float(np.percentile(values_ms, 50)), 3),
            'p99': round(float(np.percentile(values_ms, 99)), 3),
            'mean': round(float(values_ms.mean()), 3), 'count': int(values_ms.size)}


def _measure_latency(robot: LaneRobot, count: int, label: str) -> list[float]:
    samples = []
    for _ in tqdm(range(count), desc=f'commit latency ({label})', leave=False):
        started = time.perf_counter()
        if robot.propose():
            samples.append(time.perf_counter() - started)
    return samples


def _measure_throughput(robots: list[LaneRobot], duration_s: float) -> float:
    counts = [0] * len(robots)
    stop = threading.Event()

    def drive(index: int) -> None:
        while not stop.is_set():
            try:
                counts[index] += robots[index].propose()
            except LedgerUnavailableError:
                pass

    threads = [threading.Thread(target=drive, args=(index,)) for index in range(len(robots))]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    stop.wait(duration_s)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    return sum(counts) / (time.perf_counter() - started)


def _wait_caught_up(cluster: LocalCluster, index: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = cluster.status(index, timeout_s=0.5)
        leader = cluster.leader_index()
        if status is not None and leader is not None and status['leader'] is not None:
            leader_status = cluster.status(leader, timeout_s=0.5)
            if leader_status and status['last_applied'] >= leader_status['commit_idx'] - 1:
                return
        time.sleep(0.05)
    raise LedgerUnavailableError(f'restarted node {index} did not catch up in {timeout_s} s')


def _max_term(cluster: LocalCluster) -> int:
    terms = [status['term'] for status in (cluster.status(index, timeout_s=1.0)
                                           for index in range(3)) if status is not None]
    return max(terms)


def _measure_failover(cluster: LocalCluster, prober: LaneRobot, kills: int,
                      label: str) -> list[float]:
    samples = []
    for _ in tqdm(range(kills), desc=f'failover ({label})', leave=False):
        leader = cluster.wait_for_leader()
        prober.propose()
        cluster.kill(leader)
        killed_at = time.perf_counter()
        deadline = killed_at + 30.0
        while time.perf_counter() < deadline:
            try:
                if prober.propose():
                    samples.append(time.perf_counter() - killed_at)
                    break
            except LedgerUnavailableError:
                continue
        else:
            logger.error('no commit within 30 s after killing leader %s', leader)
        cluster.start(leader)
        _wait_caught_up(cluster, leader, timeout_s=60.0)
    return samples


def run_configuration(label: str, base_dir: Path, *, extra_args: list[str], commits: int,
                      kills: int, throughput_s: float) -> dict:
    origin = time.monotonic() - 1.0

    def clock() -> float:
        return time.monotonic() - origin

    with LocalCluster(3, base_dir / label, extra_args=extra_args) as cluster:
        leader = cluster.wait_for_leader()
        follower = next(index for index in range(3) if index != leader)
        via_leader = LaneRobot([cluster.client_addresses[leader]], 0, clock)
        via_follower = LaneRobot([cluster.client_addresses[follower]], 1, clock)
        others = [LaneRobot(cluster.client_addresses, lane, clock) for lane in (2, 3, 4)]
        prober = LaneRobot(cluster.client_addresses, 5, clock)
        robots = [via_leader, via_follower, *others, prober]
        try:
            for robot in robots:
                robot.register()
            leader_samples = _measure_latency(via_leader, commits, f'{label}, leader')
            follower_samples = _measure_latency(via_follower, commits, f'{label}, follower')
            throughput = _measure_throughput(others, throughput_s)
            term_before = _max_term(cluster)
            load_before = os.getloadavg()[0]
            failovers = _measure_failover(cluster, prober, kills, label)
            elections = _max_term(cluster) - term_before
            load_after = os.getloadavg()[0]
            for robot in robots:
                robot.client.timeout_s = 10.0
            acknowledged = {token for robot in robots for token in robot.acknowledged}
            histories = []
            for index in range(3):
                _wait_caught_up(cluster, index, timeout_s=60.0)
                histories.append(cluster.client.history_records(
                    cluster.client_addresses[index], timeout_s=10.0))
            lost = set()
            for records in histories:
                lost |= acknowledged - {tuple(record.token.to_list()) for record in records}
            conflicts = audit_history(histories[0], clearance_m=0.1)
            identical = all(
                [r.token for r in records] == [r.token for r in histories[0]][:len(records)]
                for records in histories)
        finally:
            for robot in robots:
                robot.close()
    return {
        'commit_ms': {**_percentiles(leader_samples + follower_samples),
                      'leader': _percentiles(leader_samples),
                      'follower': _percentiles(follower_samples)},
        'failover_s': {'median': round(statistics.median(failovers), 4),
                       'max': round(max(failovers), 4),
                       'mean': round(statistics.fmean(failovers), 4),
                       'p90': round(float(np.percentile(failovers, 90)), 4),
                       'kills': kills, 'measured': len(failovers),
                       'terms_per_kill': round(elections / max(kills, 1), 2),
                       'samples': [round(value, 4) for value in sorted(failovers)]},
        'load_average_1min': {'before_failover': round(load_before, 2),
                              'after_failover': round(load_after, 2)},
        'throughput_commits_per_s': round(throughput, 1),
        'lost_commits': len(lost),
        'conflicting_commits': len(conflicts),
        'replica_histories_identical': identical,
        'acknowledged_commits': len(acknowledged),
    }


@click.command(context_settings={'help_option_names': ['-h', '--help']})
@click.option('--json', 'json_path', type=click.Path(dir_okay=False, path_type=Path),
              required=True, help='Write the results to this JSON file.')
@click.option('--commits', type=int, default=300, show_default=True,
              help='Proposals per latency series (leader, follower).')
@click.option('--kills', type=int, default=50, show_default=True,
              help='Leader kills per configuration.')
@click.option('--throughput-s', type=float, default=5.0, show_default=True,
              help='Duration of the throughput run, in seconds.')
def main(json_path: Path, commits: int, kills: int, throughput_s: float) -> None:
    """Run the consensus benchmark and write its results."""
    logging.basicConfig(level=logging.WARNING)
    results = {'command': ' '.join(['python', 'bench/consensus.py', *sys.argv[1:]]),
               'machine': {'cpus': os.cpu_count(),
                           'python': platform.python_version(),
                           'platform': platform.platform()},
               'cluster': '3 nodes, each its own process, on 127.0.0.1'}
    with tempfile.TemporaryDirectory(prefix='mapl-bench-consensus-') as folder:
        for label, extra_args in (('tuned', []), ('pysyncobj_defaults',
                                                  ['--pysyncobj-defaults'])):
            results[label] = run_configuration(label, Path(folder), extra_args=extra_args,
                                               commits=commits, kills=kills,
                                               throughput_s=throughput_s)
            click.echo(f'{label}: {json.dumps(results[label])}')
            json_path.write_text(json.dumps(results, indent=2) + '\n')
    json_path.write_text(json.dumps(results, indent=2) + '\n')
    click.echo(f'wrote {json_path}')


if __name__ == '__main__':
    main()
