"""Run the ``mapl`` command-line tool as ``python -m mapl_robotics.cli``."""

from mapl_robotics.cli import main

if __name__ == '__main__':
    # Without prog_name, click would show "python -m mapl_robotics.cli" in the usage line.
    main(prog_name='mapl')
