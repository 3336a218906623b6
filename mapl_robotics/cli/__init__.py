"""The ``mapl`` command-line tool.

Each subcommand lives in its own module of this package and registers itself on :data:`main`
(``from mapl_robotics.cli import main`` and ``@main.command(...)``).
"""

from __future__ import annotations

import importlib
import logging

import click

from mapl_robotics.errors import MaplError
from mapl_robotics.runtime import watch_parent_from_environment

__all__ = ['main']

# Modules that define subcommands; each calls ``main.add_command`` at import.
_SUBCOMMAND_MODULES = ('plan', 'sim', 'ledger', 'mesh', 'keys', 'fleet', 'spec')


class _MaplGroup(click.Group):
    """A click group that reports the library's own errors as a message and exit status 1.

    Bad input raises a :class:`~mapl_robotics.errors.MaplError` whose message names the value
    and the fix; a traceback would only hide it. Other exceptions are bugs and keep theirs.
    """

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except MaplError as error:
            logging.getLogger(__name__).debug('command failed', exc_info=True)
            raise click.ClickException(str(error)) from None


@click.group(cls=_MaplGroup,
             context_settings={'help_option_names': ['-h', '--help'], 'max_content_width': 99})
@click.option('--log-level', type=click.Choice(['debug', 'info', 'warning', 'error']),
              default='info', show_default=True, help='Logging threshold.')
@click.version_option(package_name='mapl_robotics')
def main(log_level: str) -> None:
    """Multi-robot coordination: plan, simulate and run fleets of mobile robots."""
    logging.basicConfig(level=getattr(logging, log_level.upper()),
                        format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    # Set when mapl fleet started this command: stop if that supervisor dies.
    watch_parent_from_environment()


for _name in _SUBCOMMAND_MODULES:
    try:
        importlib.import_module(f'{__name__}.{_name}')
    except ModuleNotFoundError as error:
        # Only a subcommand module that is not written yet is skipped; a missing dependency
        # inside an existing module is re-raised.
        if error.name != f'{__name__}.{_name}':
            raise
