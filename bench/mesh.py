"""Mesh benchmark: acknowledged delivery latency of 16 peer processes, with and without loss.

One run measures, on loopback:

* the raw ZeroMQ floor: a 200-byte DEALER/ROUTER round trip between two processes, and a
  200-byte fan-out from one process to 15 echo processes waiting for every reply
  (``--peers`` minus one);
* ``python_floor``: the least work any Python mesh does for the ``no_loss`` load (see
  ``mesh_floor.py``): 16 single-threaded processes with CurveZMQ, msgpack and one
  acknowledgement per message, and no delivery guarantees. It bounds from below what a node
  written in Python can reach on this host;
* ``no_loss``: 16 ``mapl mesh node`` processes (CurveZMQ on, the default) each sending state
  updates at 20 Hz to the 15 others plus a burst of plan messages every second, with the
  peers' ticks spread over one 50 ms state period and their bursts over the second;
* ``loss_10pct``: the same with the seeded fault layer dropping 10% of all packets (data,
  acknowledgements and heartbeats);
* ``no_loss_aligned_bursts``: like ``no_loss``, but every peer starts its plan burst within
  the same 50 ms, a stress case for many robots replanning at once (``--no-aligned-bursts``
  skips it).

Latency is from ``send()`` to the acknowledgement, on the sender's monotonic clock. ``lost``
counts acknowledged messages missing from the receiver's delivered log and
``duplicates_delivered`` counts messages the application received twice; both must be 0.
``cpu_us_per_message_send_phase`` is the CPU time of all peer processes during the send
phase divided by the messages sent. Unlike latency, it changes little when other jobs share
the host, as long as the peers get the CPU time they need.

    python bench/mesh.py --json bench_mesh.json
"""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import zmq
from tqdm import tqdm

from mapl_robotics.mesh import write_keypair
from mapl_robotics.runtime import python_module_command

from mesh_floor import python_floor

PAYLOAD = b'\0' * 200
STATE_HZ = 20
PLAN_BURST_PERIOD_S = 1.0


_PORTS_GIVEN: set[int] = set()


def free_port(rng: np.random.Generator) -> int:
    """Return a free loopback port below the kernel's ephemeral range.

    A port that the kernel hands out (bind to port 0) comes from the ephemeral range. The
    peers' outgoing connections take their source ports from the same range, so a peer that
    starts late could find its port taken by another peer's connection attempt to it.
    """
    low, _ = _ephemeral_range()
    for _ in range(1000):
        port = int(rng.integers(max(1024, low - 12000), low))
        if port in _PORTS_GIVEN:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(('127.0.0.1', port))
            except OSError:
                continue
        _PORTS_GIVEN.add(port)
        return port
    raise RuntimeError('no free loopback port found below the ephemeral range')


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path('/proc/sys/net/ipv4/ip_local_port_range').read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def percentiles_ms(samples_ms) -> dict:
    values = np.asarray(samples_ms, dtype=float)
    if values.size == 0:
        return {'p50_ms': None, 'p99_ms': None, 'max_ms': None, 'samples': 0}
    return {'p50_ms': round(float(np.percentile(values, 50)), 3),
            'p99_ms': round(float(np.percentile(values, 99)), 3),
            'max_ms': round(float(values.max()), 3), 'samples': int(values.size)}


# ----------------------------------------------------------------------- raw ZeroMQ floor

def _echo_server(endpoint: str, ready, stop) -> None:
    context = zmq.Context()
    sock = context.socket(zmq.ROUTER)
    sock.linger = 0
    sock.bind(endpoint)
    ready.set()
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    while not stop.is_set():
        if poller.poll(100):
            sock.send_multipart(sock.recv_multipart())
    sock.close()
    context.term()


def raw_floor(round_trips: int, fanouts: int, *, peers: int,
              rng: np.random.Generator) -> dict:
    spawn = multiprocessing.get_context('spawn')
    stop = spawn.Event()
    endpoints = [f'tcp://127.0.0.1:{free_port(rng)}' for _ in range(peers - 1)]
    servers = []
    for endpoint in endpoints:
        ready = spawn.Event()
        process = spawn.Process(target=_echo_server, args=(endpoint, ready, stop), daemon=True)
        process.start()
        servers.append((process, ready))
    for _, ready in servers:
        ready.wait(30)
    context = zmq.Context()
    sockets = []
    for endpoint in endpoints:
        sock = context.socket(zmq.DEALER)
        sock.linger = 0
        sock.connect(endpoint)
        sockets.append(sock)
    try:
        for sock in sockets:  # warm up every connection
            sock.send(PAYLOAD)
            sock.recv()
        single_ms = []
        for _ in range(round_trips):
            began = time.perf_counter()
            sockets[0].send(PAYLOAD)
            sockets[0].recv()
            single_ms.append((time.perf_counter() - began) * 1e3)
        poller = zmq.Poller()
        for sock in sockets:
            poller.register(sock, zmq.POLLIN)
        fanout_ms = []
        for _ in range(fanouts):
            began = time.perf_counter()
            for sock in sockets:
                sock.send(PAYLOAD)
            pending = len(sockets)
            while pending:
                for sock, _ in poller.poll(1000):
                    sock.recv()
                    pending -= 1
            fanout_ms.append((time.perf_counter() - began) * 1e3)
    finally:
        stop.set()
        for sock in sockets:
            sock.close()
        context.term()
        for process, _ in servers:
            process.join(10)
    return {'round_trip_200B': percentiles_ms(single_ms),
            f'fanout_{peers - 1}_all_replies': percentiles_ms(fanout_ms)}


# ----------------------------------------------------------------------- mesh phases

def run_phase(name: str, folder: Path, *, peers: int, drop_p: float, send_s: float,
              deadline_ms: float, seed: int, rng: np.random.Generator,
              spread_plan_bursts: bool = True) -> dict:
    folder.mkdir(parents=True)
    ids = [f'r{index:02d}' for index in range(peers)]
    key_folder = folder / 'keys'
    for node_id in ids:
        write_keypair(key_folder, node_id)
    ports = {node_id: free_port(rng) for node_id in ids}
    start_at_s = time.time() + 10.0
    processes = {}
    logs = []
    for index, node_id in enumerate(ids):
        # Robots run on independent clocks, so their 20 Hz ticks fall at different phases.
        # The peers' start times are spread evenly over one state period, so that the 16
        # ticks (240 messages) do not fire in the same instant. The load per second is the
        # same.
        phase_s = index * (1.0 / STATE_HZ) / peers
        # Robots replan at their own times too, so the plan bursts are spread over the burst
        # period in the same way, unless the phase measures bursts that all coincide.
        plan_phase_s = index * PLAN_BURST_PERIOD_S / peers if spread_plan_bursts else 0.0
        args = [*python_module_command('mapl_robotics.cli'), '--log-level', 'error', 'mesh', 'node', '--id', node_id,
                '--bind', f'tcp://127.0.0.1:{ports[node_id]}', '--keys-dir', str(key_folder),
                '--drop-p', str(drop_p), '--seed', str(seed + index),
                '--send-s', str(send_s), '--linger-s', '1', '--deadline-ms', str(deadline_ms),
                '--start-at-unix-s', f'{start_at_s + phase_s:.4f}',
                '--state-hz', str(STATE_HZ),
                '--plan-burst-period-s', str(PLAN_BURST_PERIOD_S), '--plan-burst-size', '5',
                '--plan-phase-s', f'{plan_phase_s:.4f}', '--buffer-logs',
                '--delivered-log', str(folder / f'{node_id}.delivered'),
                '--acked-log', str(folder / f'{node_id}.acked'),
                '--metrics-json', str(folder / f'{node_id}.json')]
        args += [part for other in ids if other != node_id
                 for part in ('--peer', f'{other}=tcp://127.0.0.1:{ports[other]}')]
        stderr = open(folder / f'{node_id}.err', 'w', encoding='utf-8')
        logs.append(stderr)
        processes[node_id] = subprocess.Popen(args, start_new_session=True,
                                              stdout=subprocess.DEVNULL, stderr=stderr)
    limit_s = time.monotonic() + 10.0 + send_s + deadline_ms / 1e3 + 60.0
    # disable=None: no bar when stderr is not a terminal (a log file gets no frames).
    with tqdm(total=len(ids), desc=name, unit='peer', disable=None) as progress:
        try:
            while any(p.poll() is None for p in processes.values()):
                if time.monotonic() > limit_s:
                    raise TimeoutError(f'phase {name} did not finish in time')
                progress.n = sum(p.poll() is not None for p in processes.values())
                progress.refresh()
                time.sleep(0.2)
        finally:
            for process in processes.values():
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            for log in logs:
                log.close()
    return summarize(folder, ids, send_s)


def summarize(folder: Path, ids: list[str], send_s: float) -> dict:
    latencies = collections.defaultdict(list)
    totals = collections.Counter()
    delivered = collections.defaultdict(collections.Counter)
    for node_id in ids:
        for line in (folder / f'{node_id}.delivered').read_text().splitlines():
            sender, kind, number, _ = line.split()
            delivered[node_id][(sender, kind, number)] += 1
    lost = 0
    for node_id in ids:
        summary = json.loads((folder / f'{node_id}.json').read_text())
        for kind, samples in summary['latency_ms'].items():
            latencies[kind].extend(samples)
        for key in ('sent', 'acked', 'failed', 'duplicates_delivered'):
            totals[key] += summary[key]
        totals['cpu_ms'] += round(summary['cpu_s'] * 1e3)
        totals['cpu_send_phase_ms'] += round(summary.get('cpu_send_phase_s', 0.0) * 1e3)
        counters = summary['metrics']['counters']
        for key in ('retransmissions', 'fault_dropped', 'hwm_drops', 'duplicates_dropped'):
            totals[key] += counters.get(key, 0)
        for line in (folder / f'{node_id}.acked').read_text().splitlines():
            peer, kind, number = line.split()
            if delivered[peer][(node_id, kind, number)] == 0:
                lost += 1
    duplicates_in_logs = sum(count - 1 for counter in delivered.values()
                             for count in counter.values() if count > 1)
    everything = latencies['state'] + latencies['plan']
    result = percentiles_ms(everything)
    result.update({'state': percentiles_ms(latencies['state']),
                   'plan': percentiles_ms(latencies['plan']),
                   'over_100ms': int(sum(1 for value in everything if value > 100.0)),
                   'lost': lost,
                   'duplicates_delivered': totals['duplicates_delivered'] + duplicates_in_logs,
                   'throughput_msgs_per_s': round(totals['acked'] / send_s, 1)})
    # CPU time of all peer processes (including about 0.5 s of imports each) per acked message.
    result['cpu_ms_per_acked_message'] = round(totals['cpu_ms'] / max(totals['acked'], 1), 3)
    # CPU time of all peers during the send phase only (steady state), per message sent and
    # in cores (CPU seconds per second) for the whole fleet.
    result['cpu_us_per_message_send_phase'] = round(
        totals['cpu_send_phase_ms'] * 1e3 / max(totals['sent'], 1), 1)
    result['cpu_cores_send_phase'] = round(totals['cpu_send_phase_ms'] / 1e3 / send_s, 2)
    result.update({key: totals[key] for key in ('sent', 'acked', 'failed', 'retransmissions',
                                                 'fault_dropped', 'hwm_drops',
                                                 'duplicates_dropped')})
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--json', type=Path, required=True, help='Write the results here.')
    parser.add_argument('--send-s', type=float, default=10.0,
                        help='Seconds of load per phase (default 10).')
    parser.add_argument('--deadline-ms', type=float, default=1000.0,
                        help='Message deadline in ms (default 1000, so that slow messages '
                             'are measured rather than failed).')
    parser.add_argument('--round-trips', type=int, default=5000,
                        help='Raw ZeroMQ round trips for the floor; a fifth as many fan-outs '
                             '(default 5000).')
    parser.add_argument('--peers', type=int, default=16,
                        help='Peer processes per phase (default 16).')
    parser.add_argument('--seed', type=int, default=2026,
                        help='Seed of the fault layers and retry jitter (default 2026).')
    parser.add_argument('--aligned-bursts', action=argparse.BooleanOptionalAction, default=True,
                        help='Also run a no-loss phase whose plan bursts all start within one '
                             'state period (default on).')
    args = parser.parse_args()

    results = {'peers': args.peers, 'send_s': args.send_s, 'deadline_ms': args.deadline_ms,
               'cpu_count': os.cpu_count(),
               'load': f'per node: state 20 Hz and 5 plans/s to each of {args.peers - 1} peers; '
                       'state 200 B, plans 2000 B payload; CurveZMQ on'}
    # Ports only; a process id seed keeps two benchmark runs on one host from probing the
    # same sequence of ports.
    port_rng = np.random.default_rng([args.seed, os.getpid()])
    results['raw_zmq'] = raw_floor(args.round_trips, args.round_trips // 5, peers=args.peers,
                                   rng=port_rng)
    results['python_floor'] = python_floor(
        [f'tcp://127.0.0.1:{free_port(port_rng)}' for _ in range(args.peers)],
        send_s=args.send_s, state_hz=STATE_HZ, seed=args.seed)
    results['load_average_before'] = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix='mapl_bench_mesh_') as folder:
        results['no_loss'] = run_phase('no_loss', Path(folder) / 'no_loss', peers=args.peers,
                                       drop_p=0.0,
                                       send_s=args.send_s, deadline_ms=args.deadline_ms,
                                       seed=args.seed, rng=port_rng)
        results['loss_10pct'] = run_phase('loss_10pct', Path(folder) / 'loss', peers=args.peers,
                                          drop_p=0.1,
                                          send_s=args.send_s, deadline_ms=args.deadline_ms,
                                          seed=args.seed + 1000, rng=port_rng)
        if args.aligned_bursts:
            results['no_loss_aligned_bursts'] = run_phase(
                'no_loss_aligned_bursts', Path(folder) / 'aligned', peers=args.peers,
                drop_p=0.0, send_s=args.send_s, deadline_ms=args.deadline_ms,
                seed=args.seed + 2000, rng=port_rng, spread_plan_bursts=False)

    floor_ms = results['raw_zmq']['round_trip_200B']['p99_ms']
    results['no_loss']['p99_over_raw_round_trip'] = round(results['no_loss']['p99_ms'] / floor_ms,
                                                          1)
    results['no_loss']['p99_over_python_floor'] = round(
        results['no_loss']['p99_ms'] / results['python_floor']['p99_ms'], 1)
    phases = [name for name in ('no_loss', 'loss_10pct', 'no_loss_aligned_bursts')
              if name in results]
    results['lost'] = sum(results[name]['lost'] for name in phases)
    results['duplicates_delivered'] = sum(results[name]['duplicates_delivered']
                                          for name in phases)
    results['load_average_after'] = os.getloadavg()
    args.json.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == '__main__':
    main()
