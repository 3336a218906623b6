"""``mapl mesh``: run a mesh peer process (used by the mesh tests and the benchmark)."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import signal
import threading
import time
from pathlib import Path

import click

from mapl_robotics.cli import main
from mapl_robotics.errors import MaplError
from mapl_robotics.mesh.config import MeshConfig, PeerConfig
from mapl_robotics.mesh.delivery import RetryPolicy
from mapl_robotics.mesh.faults import FaultConfig
from mapl_robotics.mesh.fleet import mesh_config_from_spec
from mapl_robotics.mesh.loadgen import DeliveryRecorder, LoadSettings, run_load
from mapl_robotics.mesh.node import MeshNode
from mapl_robotics.mesh.schema import NODE_ID_FORM, validate_node_id
from mapl_robotics.mesh.security import FleetKeyring, load_keypair
from mapl_robotics.runtime import freeze_startup_heap
from mapl_robotics.spec import load_spec

_log = logging.getLogger(__name__)


# Options that a node built from a fleet spec (--spec) does not use.
_SPEC_OPTIONS = {'bind_endpoint': '--bind', 'peer_values': '--peer', 'insecure': '--insecure',
                 'reference_id': '--reference', 'heartbeat_ms': '--heartbeat-ms',
                 'drop_p': '--drop-p', 'duplicate_p': '--duplicate-p',
                 'reorder_p': '--reorder-p', 'delay_p': '--delay-p',
                 'max_delay_ms': '--max-delay-ms', 'seed': '--seed'}


def _reject_options_with_spec(context: click.Context) -> None:
    """Raise a usage error for options that --spec would silently ignore."""
    ignored_flags = [flag for name, flag in _SPEC_OPTIONS.items()
                     if context.get_parameter_source(name)
                     is click.core.ParameterSource.COMMANDLINE]
    if ignored_flags:
        raise click.UsageError(f'{", ".join(ignored_flags)} cannot be combined with --spec: '
                               'the node is built from the spec\'s mesh section (endpoints, '
                               'peers, timing and security) alone. Drop them, or drop --spec')


@main.group('mesh')
def mesh() -> None:
    """Run and inspect ZeroMQ mesh nodes."""


def _parse_peers(values: tuple[str, ...]) -> tuple[PeerConfig, ...]:
    peers = []
    for value in values:
        node_id, separator, endpoint = value.partition('=')
        if not separator:
            raise click.BadParameter(f'peer {value!r} must look like ID=tcp://127.0.0.1:7001')
        peers.append(PeerConfig(node_id.strip(), endpoint.strip()))
    return tuple(peers)


def _finite(context: click.Context, param: click.Parameter, value: float | None):
    """Reject nan and infinities, which click's FloatRange lets through."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f'{value!r} is not a finite number')
    return value


class _SkewedClock:
    """Wall clock plus a fixed offset, to test time synchronization against a skewed node."""

    def __init__(self, skew_s: float) -> None:
        import time
        self._time = time.time
        self.skew_s = skew_s

    def __call__(self) -> float:
        return self._time() + self.skew_s


@mesh.command('node')
@click.option('--id', 'node_id', required=True, help=f'This node\'s id: {NODE_ID_FORM}.')
@click.option('--bind', 'bind_endpoint', default='tcp://127.0.0.1:0', show_default=True,
              help='Endpoint of the inbound ROUTER socket (loopback by default).')
@click.option('--peer', 'peer_values', multiple=True,
              help='A peer as ID=ENDPOINT; repeat for each peer.')
@click.option('--spec', 'spec_path', type=click.Path(exists=True, dir_okay=False),
              default=None,
              help='Fleet spec: take endpoints, peers, timing and security from its mesh '
                   'section (--bind, --peer, --heartbeat-ms and the fault options are ignored).')
@click.option('--keys-dir', type=click.Path(exists=True, file_okay=False, path_type=Path),
              help='Folder from `mapl keys generate`: ID.key_secret for this node and the '
                   '*.key files of every allowed node.')
@click.option('--insecure', is_flag=True,
              help='Run without CurveZMQ (trusted loopback tests only).')
@click.option('--reference', 'reference_id', default=None,
              help='Node id whose clock is fleet time.')
@click.option('--clock-skew-s', type=float, default=0.0, show_default=True, callback=_finite,
              help='Add this many seconds to this node\'s wall clock (tests).')
@click.option('--heartbeat-ms', type=click.FloatRange(min=1.0, max=60_000.0), default=25.0,
              show_default=True, help='Heartbeat period in milliseconds (1 to 60000).')
@click.option('--drop-p', type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help='Fault layer: probability of dropping each outgoing packet.')
@click.option('--duplicate-p', type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help='Fault layer: probability of sending a packet twice.')
@click.option('--reorder-p', type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help='Fault layer: probability of holding a packet back so later ones pass it.')
@click.option('--delay-p', type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help='Fault layer: probability of delaying a packet.')
@click.option('--max-delay-ms', type=click.FloatRange(min=0), default=0.0, show_default=True,
              callback=_finite, help='Fault layer: largest injected delay in milliseconds.')
@click.option('--seed', type=click.IntRange(min=0), default=0, show_default=True,
              help='Seed of the fault layer and retry jitter.')
@click.option('--target', 'targets', multiple=True,
              help='Peer to send load to; repeat. Default: every peer.')
@click.option('--send-s', type=click.FloatRange(min=0), default=0.0, show_default=True,
              callback=_finite, help='Seconds of sending load; 0 sends nothing.')
@click.option('--linger-s', type=click.FloatRange(min=0), default=1.0, show_default=True,
              callback=_finite,
              help='Seconds to keep running after sending, for retries and late messages.')
@click.option('--start-at-unix-s', type=float, default=None, callback=_finite,
              help='Wall-clock time at which to start sending (aligns several processes).')
@click.option('--state-hz', type=click.FloatRange(min=0), default=0.0, show_default=True,
              callback=_finite, help='State updates per second to every target.')
@click.option('--plan-count', type=click.IntRange(min=0), default=0, show_default=True,
              help='Plan messages per target, spread over --send-s.')
@click.option('--plan-burst-period-s', type=click.FloatRange(min=0), default=0.0,
              show_default=True, callback=_finite,
              help='Period of plan bursts in seconds (0: none).')
@click.option('--plan-burst-size', type=click.IntRange(min=0), default=0, show_default=True,
              help='Plan messages per burst and target.')
@click.option('--plan-phase-s', type=click.FloatRange(min=0), default=0.0, show_default=True,
              callback=_finite,
              help='Delay of the first plan burst after the start of sending, in seconds.')
@click.option('--deadline-ms', type=click.FloatRange(min=1), default=100.0, show_default=True,
              callback=_finite, help='Deadline of each message in milliseconds.')
@click.option('--delivered-log', type=click.Path(dir_okay=False), default=None,
              help='Append "SENDER KIND N SESSION" for each delivered message.')
@click.option('--acked-log', type=click.Path(dir_okay=False), default=None,
              help='Append "PEER KIND N" for each acknowledged message.')
@click.option('--metrics-json', type=click.Path(dir_okay=False), default=None,
              help='Write counters and latencies here on exit.')
@click.option('--audit-log', 'audit_log', type=click.Path(dir_okay=False), default=None,
              help='Append security events and plan commits here, one JSON object a line.')
@click.option('--run-s', type=click.FloatRange(min=0), default=None, callback=_finite,
              help='Without load: stop after this many seconds (default: until SIGTERM).')
@click.option('--buffer-logs', is_flag=True,
              help='Buffer the log files instead of flushing each line (benchmarks).')
@click.option('--progress', is_flag=True, help='Show a progress bar while sending.')
def node(node_id: str, bind_endpoint: str, peer_values: tuple[str, ...], spec_path: str | None,
         keys_dir: Path | None,
         insecure: bool, reference_id: str | None, clock_skew_s: float, heartbeat_ms: float,
         drop_p: float, duplicate_p: float, reorder_p: float, delay_p: float,
         max_delay_ms: float, seed: int, targets: tuple[str, ...], send_s: float,
         linger_s: float, start_at_unix_s: float | None, state_hz: float, plan_count: int,
         plan_burst_period_s: float, plan_burst_size: int, plan_phase_s: float,
         deadline_ms: float,
         delivered_log: str | None, acked_log: str | None, metrics_json: str | None,
         audit_log: str | None, run_s: float | None, buffer_logs: bool,
         progress: bool) -> None:
    """Run one mesh peer, optionally sending load, until done or SIGTERM."""
    if spec_path is not None:
        _reject_options_with_spec(click.get_current_context())
    if insecure and keys_dir is not None:
        raise click.UsageError('--insecure runs without CurveZMQ, so --keys-dir would be '
                               'ignored; drop one of them')
    try:
        if spec_path is not None:
            config = mesh_config_from_spec(load_spec(spec_path), node_id, keys_dir=keys_dir,
                                           clock=_SkewedClock(clock_skew_s))
        else:
            config = _build_config(
                node_id=node_id, bind_endpoint=bind_endpoint,
                peers=_parse_peers(peer_values), keys_dir=keys_dir, insecure=insecure,
                reference_id=reference_id, clock_skew_s=clock_skew_s,
                heartbeat_s=heartbeat_ms / 1e3,
                faults=FaultConfig(drop_p=drop_p, duplicate_p=duplicate_p,
                                   reorder_p=reorder_p, delay_p=delay_p,
                                   max_delay_s=max_delay_ms / 1e3),
                seed=seed, deadline_s=deadline_ms / 1e3)
        if audit_log is not None:
            config = dataclasses.replace(config, audit_path=audit_log)
        _check_known_peers(config, targets)
        mesh_node = MeshNode(config).start()
        freeze_startup_heap()
    except MaplError as error:
        raise click.ClickException(str(error)) from error
    except OSError as error:
        raise click.ClickException(f'cannot open {error.filename}: {error.strerror}; '
                                   'create its folder or choose another path') from error
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        _run(mesh_node, stop, send_s=send_s, run_s=run_s, metrics_json=metrics_json,
             delivered_log=delivered_log, settings=LoadSettings(
                targets=targets, send_s=send_s, linger_s=linger_s,
                start_at_unix_s=start_at_unix_s, state_hz=state_hz, plan_count=plan_count,
                plan_burst_period_s=plan_burst_period_s, plan_burst_size=plan_burst_size,
                plan_phase_s=plan_phase_s,
                deadline_s=deadline_ms / 1e3, delivered_log=delivered_log,
                acked_log=acked_log, metrics_json=metrics_json, flush_lines=not buffer_logs,
                progress=progress))
    except OSError as error:
        raise click.ClickException(f'cannot write {error.filename}: {error.strerror}; '
                                   'create its folder or choose another path') from error
    finally:
        mesh_node.close()
    if not stop.is_set() and mesh_node.io_error is not None:
        raise click.ClickException(f'the I/O thread of mesh node {node_id!r} stopped on an '
                                   f'error: {mesh_node.io_error!r}')


def _check_known_peers(config: MeshConfig, targets: tuple[str, ...]) -> None:
    """Raise a usage error for a --target or --reference that is not a configured node."""
    peers = {peer.node_id for peer in config.peers}
    unknown = sorted(set(targets) - peers)
    if unknown:
        raise click.UsageError(f'--target {", ".join(unknown)}: not a configured peer; '
                               f'peers are {sorted(peers)}')
    reference_id = config.reference_id
    if reference_id is not None and reference_id != config.node_id \
            and reference_id not in peers:
        raise click.UsageError(f'--reference {reference_id}: neither this node nor a peer, '
                               'so the clock would never synchronize; pass a --peer id or '
                               'this node\'s --id')


def _run(mesh_node: MeshNode, stop: threading.Event, *, send_s: float, run_s: float | None,
         metrics_json: str | None, delivered_log: str | None, settings: LoadSettings) -> None:
    """Send the load, or serve until ``run_s`` passes, SIGTERM or an I/O thread failure."""
    if send_s > 0:
        run_load(mesh_node, settings, stop=stop)
        return
    recorder = DeliveryRecorder(mesh_node, delivered_log)
    limit_s = None if run_s is None else time.monotonic() + run_s
    while mesh_node.running:
        left_s = 0.5 if limit_s is None else min(0.5, limit_s - time.monotonic())
        if left_s <= 0 or stop.wait(left_s):
            break
    recorder.close()
    if metrics_json is not None:
        summary = {'node': mesh_node.node_id, 'session': mesh_node.session,
                   'delivered': recorder.delivered,
                   'duplicates_delivered': recorder.duplicates,
                   'metrics': mesh_node.metrics()}
        Path(metrics_json).write_text(json.dumps(summary), encoding='utf-8')


def _build_config(*, node_id: str, bind_endpoint: str, peers: tuple[PeerConfig, ...],
                  keys_dir: Path | None, insecure: bool, reference_id: str | None,
                  clock_skew_s: float, heartbeat_s: float, faults: FaultConfig, seed: int,
                  deadline_s: float) -> MeshConfig:
    # Validate the id before it becomes part of a key file path, so '../x' reads nothing.
    validate_node_id(node_id)
    keypair = keyring = None
    if not insecure:
        if keys_dir is None:
            raise click.UsageError('pass --keys-dir (from `mapl keys generate`) or --insecure')
        keypair = load_keypair(keys_dir / f'{node_id}.key_secret')
        keyring = FleetKeyring.from_directory(keys_dir)
    clock = _SkewedClock(clock_skew_s)
    return MeshConfig(node_id=node_id, bind_endpoint=bind_endpoint, peers=peers,
                      security='none' if insecure else 'curve', keypair=keypair,
                      keyring=keyring, reference_id=reference_id, clock=clock,
                      heartbeat_interval_s=heartbeat_s, faults=faults, fault_seed=seed,
                      default_deadline_s=deadline_s, retry=RetryPolicy())
