"""``mapl keys``: generate CurveZMQ key pairs for the robots and ledger nodes of a fleet."""

from __future__ import annotations

from pathlib import Path

import click

from mapl_robotics.cli import main
from mapl_robotics.errors import MeshError
from mapl_robotics.mesh.schema import NODE_ID_FORM, validate_node_id
from mapl_robotics.mesh.security import FleetKeyring, write_keypair


@main.group('keys')
def keys() -> None:
    """Create and inspect the CurveZMQ keys that authenticate mesh nodes."""


def _split_ids(values: tuple[str, ...]) -> list[str]:
    ids = [part.strip() for value in values for part in value.split(',') if part.strip()]
    if not ids:
        raise click.BadParameter('give at least one node id, for example --nodes r0,r1,r2')
    if len(set(ids)) != len(ids):
        raise click.BadParameter(f'node ids must be unique, got {ids}')
    for node_id in ids:
        try:
            validate_node_id(node_id)
        except MeshError as error:
            raise click.BadParameter(str(error)) from error
    return ids


@keys.command('generate')
@click.option('--out', 'out_dir', type=click.Path(file_okay=False, path_type=Path),
              required=True, help='Folder to write NAME.key (public) and NAME.key_secret into.')
@click.option('--nodes', '--robots', 'robot_ids', multiple=True, required=True,
              help='Ids of the mesh nodes to make keys for, robots and ledger nodes alike, '
                   'comma-separated or repeated: --nodes r0,r1 --nodes ledger_0. Each id is '
                   f'{NODE_ID_FORM}. --robots is the older name of this option.')
@click.option('--force', is_flag=True, help='Overwrite key files that already exist.')
def generate(out_dir: Path, robot_ids: tuple[str, ...], force: bool) -> None:
    """Write one key pair per node id; the public .key files form the fleet's allowed list.

    Copy each NAME.key_secret to its own node only; share the .key files with every node.
    """
    ids = _split_ids(robot_ids)
    existing = [node_id for node_id in ids
                if (out_dir / f'{node_id}.key_secret').exists() or
                (out_dir / f'{node_id}.key').exists()]
    if existing and not force:
        raise click.ClickException(f'key files for {existing} already exist in {out_dir}; '
                                   'pass --force to replace them')
    for node_id in ids:
        try:
            public_path, secret_path = write_keypair(out_dir, node_id)
        except OSError as error:
            raise click.ClickException(f'cannot write key files to {out_dir}: '
                                       f'{error.strerror}; choose a writable --out folder'
                                       ) from error
        click.echo(f'{node_id}: {public_path} {secret_path}')


@keys.command('list')
@click.argument('key_dir', type=click.Path(exists=True, file_okay=False, path_type=Path))
def list_keys(key_dir: Path) -> None:
    """Print the node id and public key of every NAME.key file in KEY_DIR."""
    try:
        keyring = FleetKeyring.from_directory(key_dir)
    except MeshError as error:
        raise click.ClickException(str(error)) from error
    for node_id in keyring.node_ids():
        click.echo(f'{node_id} {keyring.public_key(node_id).decode("ascii")}')
