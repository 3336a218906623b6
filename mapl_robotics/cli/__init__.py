"""The ``mapl`` command-line tool.

Each subcommand lives in its own module of this package and registers itself on :data:`main`.
"""

from __future__ import annotations

import importlib
import logging

import click

__all__ = ['main']

# Modules that define subcommands; each calls ``main.add_command`` at import.
_SUBCOMMAND_MODULES = ('plan', 'sim', 'ledger', 'mesh', 'keys', 'fleet', 'spec')


@click.group(context_settings={'help_option_names': ['-h', '--help'], 'max_content_width': 99})
@click.option('--log-level', type=click.Choice(['debug', 'info', 'warning', 'error']),
              default='info', show_default=True, help='Logging threshold.')
@click.version_option(package_name='mapl_robotics')
def main(log_level: str) -> None:
    """Multi-robot coordination: plan, simulate and run fleets of mobile robots."""
    logging.basicConfig(level=getattr(logging, log_level.upper()),
                        format='%(asctime)s %(levelname)s %(name)s: %(message)s')


for _name in _SUBCOMMAND_MODULES:
    try:
        importlib.import_module(f'{__name__}.{_name}')
    except ModuleNotFoundError as error:
        # Only a subcommand module that is not written yet is skipped; a missing dependency
        # inside an existing module is re-raised.
        if error.name != f'{__name__}.{_name}':
            raise
