"""Durations with units, as written in fleet specs ("100ms", "0.1 s", "2 min").

Keys whose name ends in ``_s`` take a number of seconds or a string with a unit. Keys without a
unit in their name (``latency_bound``) take only a string with a unit, because a bare number
there would be ambiguous.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Union

from pydantic import BeforeValidator, PlainSerializer
from pydantic_core import PydanticCustomError

__all__ = ['DURATION_UNITS', 'Duration', 'DurationWithUnit', 'parse_duration',
           'format_duration']

# Seconds per unit. The first spelling of each group is the one listed in error messages.
DURATION_UNITS: dict[str, float] = {
    'ns': 1e-9, 'nanosecond': 1e-9, 'nanoseconds': 1e-9,
    'us': 1e-6, 'µs': 1e-6, 'microsecond': 1e-6, 'microseconds': 1e-6,
    'ms': 1e-3, 'millisecond': 1e-3, 'milliseconds': 1e-3,
    's': 1.0, 'sec': 1.0, 'secs': 1.0, 'second': 1.0, 'seconds': 1.0,
    'min': 60.0, 'mins': 60.0, 'minute': 60.0, 'minutes': 60.0,
    'h': 3600.0, 'hr': 3600.0, 'hour': 3600.0, 'hours': 3600.0,
}
_UNIT_LIST = 'ns, us, ms, s, min, h'
_EXAMPLES = "for example '100ms', '0.1 s' or '2 min'"
_PATTERN = re.compile(r'^\s*(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*'
                      r'(?P<unit>[^\d\s.+-][^\s]*)?\s*$')


def _invalid(reason: str) -> PydanticCustomError:
    return PydanticCustomError('duration', reason)


def parse_duration(value: object, *, unit_required: bool = False) -> float:
    """Convert ``value`` to seconds.

    A number is taken as seconds unless ``unit_required``. A string is a number followed by one
    of the units in :data:`DURATION_UNITS`. Negative, NaN and infinite durations are rejected.
    Raises ``pydantic_core.PydanticCustomError`` (a ``ValueError``), so that pydantic reports
    it with the key path.
    """
    if isinstance(value, bool):
        raise _invalid(f'a duration must be a number of seconds or a string with a unit '
                       f'({_EXAMPLES}), not a boolean')
    if isinstance(value, (int, float)):
        if unit_required:
            raise _invalid(f'a bare number is ambiguous here: write the unit, {_EXAMPLES}; '
                           f'allowed units: {_UNIT_LIST}')
        seconds = float(value)
    elif isinstance(value, str):
        match = _PATTERN.match(value)
        if match is None:
            raise _invalid(f'not a duration: write a number followed by a unit, {_EXAMPLES}; '
                           f'allowed units: {_UNIT_LIST}')
        unit = match.group('unit')
        if unit is None:
            raise _invalid(f'the duration has no unit: write it with one, {_EXAMPLES}; '
                           f'allowed units: {_UNIT_LIST}')
        factor = DURATION_UNITS.get(unit, DURATION_UNITS.get(unit.lower()))
        if factor is None:
            raise _invalid(f'unknown time unit {unit!r}; allowed units: {_UNIT_LIST} '
                           f'({_EXAMPLES})')
        seconds = float(match.group('number')) * factor
    else:
        raise _invalid(f'a duration must be a number of seconds or a string with a unit '
                       f'({_EXAMPLES}), not {type(value).__name__}')
    if not math.isfinite(seconds):
        raise _invalid('a duration must be finite')
    if seconds < 0.0:
        raise _invalid('a duration must not be negative')
    return seconds


def format_duration(seconds: float) -> str:
    """Format ``seconds`` so that :func:`parse_duration` reads back the same value."""
    return f'{seconds!r} s'


def _parse_seconds(value: object) -> float:
    return parse_duration(value)


def _parse_with_unit(value: object) -> float:
    return parse_duration(value, unit_required=True)


# A duration in seconds, written as a number of seconds or as a string with a unit.
Duration = Annotated[
    float,
    BeforeValidator(_parse_seconds, json_schema_input_type=Union[float, str]),
]

# A duration in seconds that the document must write with a unit; it is written back as
# "<seconds> s" so that a dumped spec loads again.
DurationWithUnit = Annotated[
    float,
    BeforeValidator(_parse_with_unit, json_schema_input_type=str),
    PlainSerializer(format_duration, return_type=str, when_used='always'),
]
