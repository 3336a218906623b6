"""The safe YAML loader shared by the map and fleet spec readers.

PyYAML resolves plain scalars by the YAML 1.1 rules, under which ``5e-2``, ``-1e1`` and
``1.0e5`` are strings: its float pattern needs a dot and a signed exponent. ROS reads the same
YAML with yaml-cpp, which converts them to numbers, and YAML 1.2 calls them floats too. A
map_server YAML or a fleet spec written for ROS therefore has to load here with the same
numbers. :class:`SafeLoader` adds one implicit resolver for decimal numbers with an exponent,
with or without a dot and with or without an exponent sign. Everything else resolves as in
:class:`yaml.SafeLoader`.

>>> load_yaml('resolution: 5e-2')
{'resolution': 0.05}
>>> load_yaml('origin: [-1e1, 2E+3, 1.5e2]')
{'origin': [-10.0, 2000.0, 150.0]}
"""

from __future__ import annotations

import re
from typing import IO, Any, Union

import yaml

__all__ = ['SafeLoader', 'load_yaml', 'EXPONENT_FLOAT']

# Decimal mantissa (digits with an optional dot, or a dot and digits) and an exponent whose
# sign is optional. Underscores follow the YAML 1.1 float digits, which PyYAML strips.
EXPONENT_FLOAT = re.compile(
    r'^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$')


class SafeLoader(yaml.SafeLoader):
    """A :class:`yaml.SafeLoader` that also reads exponent notation such as ``5e-2`` as float.

    Subclasses keep both the extra resolver and PyYAML's safe constructors.
    """


SafeLoader.add_implicit_resolver('tag:yaml.org,2002:float', EXPONENT_FLOAT,
                                 list('-+0123456789.'))


def load_yaml(stream: Union[str, bytes, IO[str], IO[bytes]]) -> Any:
    """Parse one YAML document with :class:`SafeLoader` and return its Python value.

    :raises yaml.YAMLError: when the text is not valid YAML.
    """
    return yaml.load(stream, Loader=SafeLoader)  # noqa: S506 (a SafeLoader subclass)
