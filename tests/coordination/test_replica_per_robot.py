"""Replica per robot: each robot process runs a ledger node in a thread next to its client."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

from mapl_robotics.coordination import free_ports

# One robot process: a LedgerNode served from a background thread, and a robot client that
# talks to its own node first. It prints the committed tokens as JSON and exits.
ROBOT_PROCESS = textwrap.dedent('''
    import json, pathlib, sys, time
    from mapl_robotics.coordination import (LedgerClient, LedgerSettings, generate_key_pair)
    from mapl_robotics.coordination.ledger_node import LedgerNode
    from mapl_robotics.geometry import Trajectory

    lane, raft, peers, client_addresses, journal, origin = json.loads(sys.argv[1])

    def fleet_clock():
        # Every robot process on this host shares the wall clock and the test's origin.
        return time.time() - origin

    node = LedgerNode(LedgerSettings(self_address=raft, peers=tuple(peers),
                                     client_address=client_addresses[lane],
                                     journal_dir=journal)).start()
    own_first = [client_addresses[lane]] + [a for a in client_addresses
                                             if a != client_addresses[lane]]
    private_key, _ = generate_key_pair()
    client = LedgerClient(own_first, robot_id=f'r{lane}', private_key=private_key,
                          timeout_s=60.0)
    tokens = []
    try:
        result = client.register(radius_m=0.3, max_speed_mps=1.0, pose=(0.0, 2.0 * lane, 0.0),
                                 now_s=fleet_clock())
        tokens.append(result.token.to_list())
        trajectory = result.trajectory
        for leg in range(3):
            now_s = fleet_clock()
            t0 = now_s + 0.5
            start = trajectory.position_at(t0)
            target = 1.0 if leg % 2 == 0 else 0.0
            plan = Trajectory.from_samples([(t0, *start, 0.0), (t0 + 2.0, target, 2.0 * lane,
                                                                0.0)])
            result = client.propose(plan, base_version=0, now_s=now_s)
            assert result.committed, result
            tokens.append(result.token.to_list())
            trajectory = result.trajectory
        # Wait until all three robots finished their legs (each ends at x = 1 m).
        deadline = time.monotonic() + 120.0
        while time.monotonic() < deadline:
            robots = client.read(full=True).robots
            if len(robots) == 3 and all(abs(view.trajectory.end_xy_m[0] - 1.0) < 1e-9
                                        for view in robots.values()):
                break
            time.sleep(0.05)
        print(json.dumps({'tokens': tokens,
                          'robots': sorted(client.read(full=True).robots)}))
        sys.stdout.flush()
        # Keep this replica up until every robot process has printed, so none loses quorum.
        done = pathlib.Path(journal).parent
        (done / f'done{lane}').touch()
        while time.monotonic() < deadline and len(list(done.glob('done*'))) < 3:
            time.sleep(0.05)
    finally:
        client.close()
        node.stop()
''')


def test_robot_processes_each_host_a_replica(tmp_path):
    ports = free_ports(6)
    raft = [f'127.0.0.1:{port}' for port in ports[:3]]
    clients = [f'127.0.0.1:{port}' for port in ports[3:]]
    processes = []
    origin = time.time() - 1.0
    try:
        for lane in range(3):
            argument = json.dumps([lane, raft[lane], [a for a in raft if a != raft[lane]],
                                   clients, str(tmp_path / f'robot{lane}'), origin])
            processes.append(subprocess.Popen([sys.executable, '-c', ROBOT_PROCESS, argument],
                                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                              text=True))
        outputs = [process.communicate(timeout=180) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
    for (stdout, stderr), process in zip(outputs, processes):
        assert process.returncode == 0, stderr[-2000:]
        result = json.loads(stdout.strip().splitlines()[-1])
        assert len(result['tokens']) == 4
        assert result['robots'] == ['r0', 'r1', 'r2']
    all_tokens = [tuple(token) for stdout, _ in outputs
                  for token in json.loads(stdout.strip().splitlines()[-1])['tokens']]
    assert len(set(all_tokens)) == 12
