"""Python floor of the mesh benchmark: the least work any Python mesh must do for its load.

Each of the ``peers`` processes has one thread that owns one ROUTER socket bound for inbound
packets (CurveZMQ server) and one ROUTER socket connected to every other peer (CurveZMQ
client, ``ROUTER_MANDATORY``), as a mesh node has. It sends the benchmark's load: a 200-byte
state update at 20 Hz and a burst of five 2000-byte plan messages every second to each other
peer, with the same phase spread as the ``no_loss`` phase. Every packet is msgpack-encoded
and decoded, payload included, and every message is acknowledged by one packet.

It does nothing else: no retransmission, no de-duplication or ordering, no futures, no
heartbeats, no application thread and no logging. Its latency (``send`` to the
acknowledgement, taken when the poll that brings the acknowledgement returns) is therefore a
lower bound for a Python node on the same machine under the same load, not a competitor.
"""

from __future__ import annotations

import gc
import multiprocessing
import queue
import time

import msgpack
import numpy as np
import zmq
from zmq.utils import z85

__all__ = ['python_floor']

STATE_PAYLOAD_BYTES = 200
PLAN_PAYLOAD_BYTES = 2000
PLAN_BURST_SIZE = 5
_DATA = b'FLR\x01'
_ACK = b'FLR\x02'
_CONNECT_TIMEOUT_S = 20.0


def _floor_node(index: int, endpoints: list[str], keys: list[tuple[bytes, bytes]],
                start_at_unix_s: float, send_s: float, state_hz: float, results) -> None:
    gc.freeze()
    peers = len(endpoints)
    node_id = f'r{index:02d}'.encode()
    public_key, secret_key = keys[index]
    context = zmq.Context()
    inbound = context.socket(zmq.ROUTER)
    inbound.linger = 0
    inbound.curve_server = True
    inbound.curve_publickey = public_key
    inbound.curve_secretkey = secret_key
    inbound.bind(endpoints[index])
    outbound = context.socket(zmq.ROUTER)
    outbound.linger = 0
    outbound.router_mandatory = True
    outbound.curve_publickey = public_key
    outbound.curve_secretkey = secret_key
    others = [other for other in range(peers) if other != index]
    routing_ids = [f'r{other:02d}'.encode() for other in others]
    for other, routing_id in zip(others, routing_ids):
        outbound.curve_serverkey = keys[other][0]
        outbound.setsockopt(zmq.CONNECT_ROUTING_ID, routing_id)
        outbound.connect(endpoints[other])
    try:
        _wait_routable(outbound, routing_ids)
        time.sleep(max(0.0, start_at_unix_s - time.time()))
        latencies_ms, cpu_s, unacked = _run_load(index, peers, node_id, inbound, outbound,
                                                 routing_ids, send_s, state_hz)
    finally:
        inbound.close()
        outbound.close()
        context.term()
    results.put((index, latencies_ms, cpu_s, unacked))


def _wait_routable(outbound: zmq.Socket, routing_ids: list[bytes]) -> None:
    """Send a hello to every peer until ROUTER_MANDATORY accepts it (its handshake is done)."""
    waiting = set(routing_ids)
    limit_s = time.monotonic() + _CONNECT_TIMEOUT_S
    while waiting:
        if time.monotonic() > limit_s:
            raise TimeoutError(f'floor node could not reach {sorted(waiting)}')
        for routing_id in list(waiting):
            try:
                outbound.send_multipart([routing_id, b'hello'], zmq.NOBLOCK)
            except zmq.ZMQError:
                continue
            waiting.discard(routing_id)
        time.sleep(0.01)


def _run_load(index: int, peers: int, node_id: bytes, inbound: zmq.Socket,
              outbound: zmq.Socket, routing_ids: list[bytes], send_s: float,
              state_hz: float) -> tuple[list[float], float, int]:
    state_period_s = 1.0 / state_hz
    packer = msgpack.Packer(use_bin_type=True)
    state_payload = msgpack.packb({'n': 0, 'pad': bytes(STATE_PAYLOAD_BYTES)})
    plan_payload = msgpack.packb({'n': 0, 'pad': bytes(PLAN_PAYLOAD_BYTES)})
    sent_at_s: dict[int, float] = {}
    latencies_ms: list[float] = []
    seq = 0

    def send_all(kind: str, payload: bytes) -> None:
        nonlocal seq
        now_s = time.monotonic()
        for routing_id in routing_ids:
            seq += 1
            sent_at_s[seq] = now_s
            body = packer.pack([node_id, seq, [[kind, payload]]])
            outbound.send_multipart([routing_id, _DATA, body], zmq.NOBLOCK)

    poller = zmq.Poller()
    poller.register(inbound, zmq.POLLIN)
    # The same phase spread as the mesh phases: ticks over one state period, plan bursts over
    # the second.
    start_s = time.monotonic() + index * state_period_s / peers
    end_s = start_s + send_s
    drain_until_s = end_s + 1.0
    next_state_s = start_s
    next_plan_s = start_s + index * 1.0 / peers
    cpu_start_s = time.process_time()
    while True:
        now_s = time.monotonic()
        # Every node serves until the same second after its sends, because the others'
        # last messages (their phases are later) still need their acknowledgements.
        if now_s >= drain_until_s:
            break
        if now_s < end_s:
            if now_s >= next_state_s:
                send_all('state', state_payload)
                next_state_s += state_period_s
            if now_s >= next_plan_s:
                for _ in range(PLAN_BURST_SIZE):
                    send_all('plan', plan_payload)
                next_plan_s += 1.0
            due_s = min(next_state_s, next_plan_s, end_s)
        else:
            due_s = drain_until_s
        timeout_ms = max(0, int((due_s - time.monotonic()) * 1e3 + 0.999))
        if not poller.poll(timeout_ms):
            continue
        arrived_s = time.monotonic()
        while inbound.get(zmq.EVENTS) & zmq.POLLIN:
            frames = inbound.recv_multipart(zmq.NOBLOCK)
            if len(frames) != 3:
                continue  # a hello
            body = msgpack.unpackb(frames[2], raw=False)
            if frames[1] == _DATA:
                sender, number, messages = body
                for _, payload in messages:
                    msgpack.unpackb(payload, raw=False)
                ack = packer.pack([node_id, number])
                outbound.send_multipart([sender, _ACK, ack], zmq.NOBLOCK)
            else:
                latencies_ms.append((arrived_s - sent_at_s.pop(body[1])) * 1e3)
    return latencies_ms, time.process_time() - cpu_start_s, len(sent_at_s)


def _collect(results, processes: list, *, limit_s: float) -> list:
    """Take one report per process; raise as soon as a process exits without one."""
    reports = []
    while len(reports) < len(processes):
        try:
            reports.append(results.get(timeout=0.5))
            continue
        except queue.Empty:
            pass
        failed = [process.exitcode for process in processes
                  if process.exitcode not in (None, 0)]
        if failed:
            raise RuntimeError(f'{len(failed)} floor node processes failed (exit codes '
                               f'{failed}); their tracebacks are above')
        if time.monotonic() > limit_s:
            raise TimeoutError(f'the floor nodes sent {len(reports)} of {len(processes)} '
                               'reports in time')
    return reports


def python_floor(endpoints: list[str], *, send_s: float, state_hz: float,
                 seed: int) -> dict:
    """Run the floor mesh on ``endpoints`` (one per peer) and summarize its latency and CPU."""
    spawn = multiprocessing.get_context('spawn')
    results = spawn.Queue()
    # CurveZMQ key pairs from a seeded generator: the floor's numbers do not depend on them,
    # but its runs are then the same from one to the next.
    rng = np.random.default_rng(seed)
    secrets = [z85.encode(rng.bytes(32)) for _ in endpoints]
    keys = [(zmq.curve_public(secret), secret) for secret in secrets]
    start_at_unix_s = time.time() + 5.0
    processes = [spawn.Process(target=_floor_node, daemon=True,
                               args=(index, endpoints, keys, start_at_unix_s, send_s,
                                     state_hz, results))
                 for index in range(len(endpoints))]
    for process in processes:
        process.start()
    try:
        reports = _collect(results, processes, limit_s=time.monotonic() + send_s + 60.0)
    finally:
        for process in processes:
            process.join(10)
            if process.is_alive():
                process.kill()
    latencies_ms = np.concatenate([np.asarray(report[1], dtype=float) for report in reports])
    cpu_s = sum(report[2] for report in reports)
    return {'p50_ms': round(float(np.percentile(latencies_ms, 50)), 3),
            'p99_ms': round(float(np.percentile(latencies_ms, 99)), 3),
            'max_ms': round(float(latencies_ms.max()), 3),
            'samples': int(latencies_ms.size),
            'unacked': int(sum(report[3] for report in reports)),
            'cpu_us_per_message': round(cpu_s * 1e6 / max(latencies_ms.size, 1), 1),
            'cpu_cores': round(cpu_s / send_s, 2)}

