"""``mapl spec``: validate fleet specs and export their JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import click

from mapl_robotics.cli import main

__all__ = ['spec_group']


@main.group('spec')
def spec_group() -> None:
    """Check fleet specs (the MAPL document, JSON or YAML) and export their schema."""


@spec_group.command('validate')
@click.argument('files', nargs=-1, required=True,
                type=click.Path(dir_okay=False, path_type=Path))
@click.option('--map-check/--no-map-check', default=True, show_default=True,
              help='Load each spec\'s map and check that every start and goal is inside it and '
                   'free for the robot\'s radius.')
def validate(files: tuple[Path, ...], map_check: bool) -> None:
    """Validate each fleet spec FILE and list every problem with its key path.

    Exits with status 1 when any file is invalid.
    """
    from mapl_robotics.errors import MaplError
    from mapl_robotics.spec import load_spec

    failed = 0
    for path in files:
        try:
            spec = load_spec(path)
        except MaplError as error:
            # load_spec names the file in each of its messages.
            failed += 1
            click.echo(str(error), err=True)
            continue
        try:
            if map_check and spec.map is not None:
                spec.check_positions(spec.load_world())
        except MaplError as error:
            failed += 1
            click.echo(f'invalid fleet spec {str(path)!r}: {error}', err=True)
            continue
        map_text = str(spec.map.path) if spec.map is not None else 'no map'
        click.echo(f'{path}: valid ({len(spec.robots)} robots, {len(spec.moving_obstacles)} '
                   f'moving obstacles, {map_text}, latency bound '
                   f'{spec.system.communication.latency_bound_s * 1000.0:g} ms)')
    if failed:
        raise click.exceptions.Exit(1)


@spec_group.command('schema')
@click.option('--output', '-o', type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help='Write the schema to this file instead of standard output.')
def schema(output: Path | None) -> None:
    """Print the JSON Schema (draft 2020-12) of the fleet spec."""
    from mapl_robotics.spec import spec_json_schema

    text = json.dumps(spec_json_schema(), indent=2, sort_keys=False)
    if output is None:
        click.echo(text)
    else:
        output.write_text(text + '\n', encoding='utf-8')
        click.echo(f'wrote {output}')
