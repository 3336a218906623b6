"""``mapl ledger``: run and inspect nodes of the Raft plan ledger."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

from mapl_robotics.cli import main
from mapl_robotics.errors import LedgerConfigError, LedgerError

__all__ = ['ledger']


@main.group()
def ledger() -> None:
    """Run and inspect nodes of the Raft plan ledger."""


@ledger.command('node')
@click.option('--id', 'node_name', default='', help='Name of this node in logs.')
@click.option('--self', 'self_address', required=True,
              help='Raft address host:port of this node (also its pysyncobj node id).')
@click.option('--peers', default='', help='Comma-separated Raft addresses of the other nodes.')
@click.option('--client', 'client_address', default=None,
              help='Address host:port of the client request socket [default: Raft port + 1000].')
@click.option('--journal-dir', type=click.Path(file_okay=False, path_type=Path), required=True,
              help='Folder for the journal and vote record; reuse it to restart the node.')
@click.option('--append-entries-period-s', type=float, default=0.03, show_default=True,
              help='Heartbeat period of the leader, in seconds.')
@click.option('--election-timeout-min-s', type=float, default=0.15, show_default=True,
              help='Lower end of the randomized election timeout, in seconds.')
@click.option('--election-timeout-max-s', type=float, default=0.3, show_default=True,
              help='Upper end of the randomized election timeout, in seconds.')
@click.option('--tick-s', type=float, default=0.005, show_default=True,
              help='Maximum wait of the event loop between ticks, in seconds.')
@click.option('--clearance-m', type=float, default=0.1, show_default=True,
              help='Gap required between robot discs; every node must use the same value.')
@click.option('--pysyncobj-defaults', is_flag=True,
              help="Use pysyncobj's own timing defaults (for comparison runs).")
@click.option('--fault-injection', is_flag=True,
              help='Accept requests that cut Raft links to chosen nodes (tests only).')
@click.option('--admin', is_flag=True, help='Accept membership changes from clients.')
@click.option('--parent-pid', type=int, default=None,
              help='Stop when the process with this id is no longer the parent.')
def node(node_name: str, self_address: str, peers: str, client_address: str | None,
         journal_dir: Path, append_entries_period_s: float, election_timeout_min_s: float,
         election_timeout_max_s: float, tick_s: float, clearance_m: float,
         pysyncobj_defaults: bool, fault_injection: bool, admin: bool,
         parent_pid: int | None) -> None:
    """Run one ledger node in this process until SIGTERM or Ctrl-C."""
    from mapl_robotics.coordination.ledger_node import run_node
    from mapl_robotics.coordination.ledger_state import LedgerConfig
    from mapl_robotics.coordination.settings import LedgerSettings
    try:
        settings = LedgerSettings(
            self_address=self_address,
            peers=tuple(peer for peer in peers.split(',') if peer.strip()),
            journal_dir=journal_dir, client_address=client_address, node_name=node_name,
            append_entries_period_s=append_entries_period_s,
            election_timeout_min_s=election_timeout_min_s,
            election_timeout_max_s=election_timeout_max_s, tick_s=tick_s,
            ledger=LedgerConfig(clearance_m=clearance_m), fault_injection=fault_injection,
            admin=admin, pysyncobj_defaults=pysyncobj_defaults, parent_pid=parent_pid)
    except LedgerError as error:
        raise click.UsageError(str(error)) from None
    run_node(settings)


def _positive_seconds(ctx: click.Context, param: click.Parameter, value: float) -> float:
    # click's FloatRange lets nan through, because every comparison with nan is false.
    if not (math.isfinite(value) and value > 0):
        raise click.BadParameter(f'{value!r} is invalid: give a finite number of seconds '
                                 'greater than 0, for example 1.0')
    return value


@ledger.command('status')
@click.argument('client_addresses', nargs=-1, required=True)
@click.option('--timeout-s', type=float, default=1.0, show_default=True,
              callback=_positive_seconds, help='How long to wait for each node, in seconds.')
def status(client_addresses: tuple[str, ...], timeout_s: float) -> None:
    """Print the Raft status of ledger nodes, given their client addresses (HOST:PORT).

    Prints one JSON object per node. A node that does not reply within --timeout-s gets
    {"self": ADDRESS, "error": MESSAGE} instead. Exit status: 0 when every node replied,
    1 when any node did not reply, 2 for an invalid address or timeout.
    """
    from mapl_robotics.coordination.client import LedgerClient
    try:
        client = LedgerClient(list(client_addresses), timeout_s=timeout_s)
    except LedgerConfigError as error:
        failure = click.ClickException(str(error))
        failure.exit_code = 2
        raise failure from None
    silent = 0
    with client:
        for address in client_addresses:
            try:
                click.echo(json.dumps(client.status(address), sort_keys=True))
            except LedgerError as error:
                silent += 1
                click.echo(json.dumps({'self': address, 'error': str(error)}))
    if silent:
        click.get_current_context().exit(1)
