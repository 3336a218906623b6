"""Read a fleet spec from JSON or YAML and turn validation failures into one SpecError."""

from __future__ import annotations

import json
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union

import yaml
from pydantic import BaseModel, ValidationError

from mapl_robotics.errors import SpecError, SpecFileNotFoundError
from mapl_robotics.spec.model import CrossFieldError, FleetSpec
from mapl_robotics.yamlio import SafeLoader

__all__ = ['load_spec', 'spec_json_schema', 'format_location']

_MAX_SPEC_BYTES = 16 * 1024 * 1024


class _UniqueKeyLoader(SafeLoader):
    """The shared safe YAML loader, also rejecting a key given twice in one mapping."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode,
                              deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    result: dict = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in result:
            mark = key_node.start_mark
            raise SpecError(f'key {key!r} appears twice in one mapping (line {mark.line + 1}, '
                            f'column {mark.column + 1}); keep one of them')
        result[key] = loader.construct_object(value_node, deep=deep)
    return result


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                                 _construct_unique_mapping)


def _json_object(pairs: list[tuple[str, Any]]) -> dict:
    result: dict = {}
    for key, value in pairs:
        if key in result:
            raise SpecError(f'key {key!r} appears twice in one JSON object; keep one of them')
        result[key] = value
    return result


def _parse_text(text: str, source: str, *, as_json: bool) -> Any:
    if as_json:
        try:
            return json.loads(text, object_pairs_hook=_json_object)
        except json.JSONDecodeError as error:
            raise SpecError(f'{source} is not valid JSON: {error.msg} at line {error.lineno}, '
                            f'column {error.colno}') from None
        except SpecError as error:
            # A duplicate key: the parser's message does not name the file.
            raise SpecError(f'{source} is not a valid fleet spec: {error}') from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except SpecError as error:
        raise SpecError(f'{source} is not a valid fleet spec: {error}') from None
    except yaml.YAMLError as error:
        where = ''
        mark = getattr(error, 'problem_mark', None)
        if mark is not None:
            where = f' at line {mark.line + 1}, column {mark.column + 1}'
        problem = getattr(error, 'problem', None) or str(error)
        raise SpecError(f'{source} is not valid YAML: {problem}{where}') from None


def _read_file(path: Path) -> Any:
    if not path.is_file():
        raise SpecFileNotFoundError(f'spec file {str(path)!r} does not exist or is not a file; '
                                    'check the path')
    if path.stat().st_size > _MAX_SPEC_BYTES:
        raise SpecError(f'spec file {str(path)!r} is larger than {_MAX_SPEC_BYTES} bytes; a '
                        'fleet spec is a small YAML or JSON document')
    try:
        text = path.read_text(encoding='utf-8-sig')
    except UnicodeDecodeError as error:
        raise SpecError(f'spec file {str(path)!r} is not UTF-8 text ({error.reason} at byte '
                        f'{error.start})') from None
    return _parse_text(text, repr(str(path)), as_json=path.suffix.lower() == '.json')


def format_location(location: tuple[Any, ...]) -> str:
    """Return a key path such as ``robots[2].radius_m`` for a pydantic error location."""
    text = ''
    for part in location:
        if isinstance(part, int):
            text += f'[{part}]'
        else:
            text += f'.{part}' if text else str(part)
    return text or '(top level)'


def _unwrap(annotation: Any) -> list[Any]:
    """Return the model classes reachable through Optional, Annotated, Union and tuples."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType, tuple, list):
        return [model for arg in typing.get_args(annotation) if arg is not Ellipsis
                for model in _unwrap(arg)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def _model_at(location: tuple[Any, ...], raw: Any) -> type[BaseModel] | None:
    """Find the model class whose keys live at ``location``, following discriminators."""
    models: list[type[BaseModel]] = [FleetSpec]
    value = raw
    for part in location:
        if isinstance(part, int):
            value = value[part] if isinstance(value, (list, tuple)) and part < len(value) else None
            continue
        if len(models) > 1 and isinstance(value, Mapping):
            models = [m for m in models if _tag_of(m) in (None, value.get('type'))] or models
        field_models: list[type[BaseModel]] = []
        for model in models:
            for name, field in model.model_fields.items():
                if part in (name, field.alias):
                    field_models = _unwrap(field.annotation)
        if not field_models:
            # A discriminator tag inside the location (the union member's name): skip it.
            continue
        models = field_models
        value = value.get(part) if isinstance(value, Mapping) else None
    if len(models) > 1 and isinstance(value, Mapping):
        models = [m for m in models if _tag_of(m) == value.get('type')] or models
    return models[0] if len(models) == 1 else None


def _tag_of(model: type[BaseModel]) -> Any:
    field = model.model_fields.get('type')
    if field is None:
        return None
    args = typing.get_args(field.annotation)
    return args[0] if args else None


def _clean_location(location: tuple[Any, ...], raw: Any) -> tuple[Any, ...]:
    """Drop the discriminator tags that pydantic inserts into union locations."""
    tags = {'constant_velocity', 'waypoints', 'kill_leader', 'kill_agent', 'message_loss',
            'partition'}
    cleaned: list[Any] = []
    for index, part in enumerate(location):
        previous = location[index - 1] if index else None
        tagged_parent = previous == 'motion' or (
            isinstance(previous, int) and index >= 2 and location[index - 2] == 'faults')
        if tagged_parent and part in tags:
            continue
        cleaned.append(part)
    return tuple(cleaned)


def _short_repr(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + '...'


# Unit of a field, from the suffix of its Python name (the spec key may be an alias without
# the unit, such as latency_bound for latency_bound_s). Longer suffixes come first.
_UNIT_SUFFIXES = (('_mps2', 'm/s^2'), ('_radps', 'rad/s'), ('_mps', 'm/s'), ('_bytes', 'bytes'),
                  ('_rad', 'rad'), ('_m', 'm'), ('_s', 's'))
_LIMIT_WORDS = {'greater_than': ('gt', 'greater than'), 'greater_than_equal': ('ge', 'at least'),
                'less_than': ('lt', 'less than'), 'less_than_equal': ('le', 'at most')}


def _field_unit(location: tuple[Any, ...], raw: Any) -> str:
    """Return the unit of the field at ``location``, or '' when its name has none."""
    if not location or isinstance(location[-1], int):
        return ''
    model = _model_at(location[:-1], raw)
    if model is None:
        return ''
    for name, field in model.model_fields.items():
        if location[-1] in (name, field.alias):
            return next((unit for suffix, unit in _UNIT_SUFFIXES if name.endswith(suffix)), '')
    return ''


def _limit_message(kind: str, error: dict[str, Any], location: tuple[Any, ...],
                   raw: Any) -> str:
    """Return 'must be at most 60 s, got 3600.0 s' for a range error, with the field's unit."""
    key, words = _LIMIT_WORDS[kind]
    unit = _field_unit(location, raw)
    suffix = f' {unit}' if unit else ''
    limit = (error.get('ctx') or {}).get(key)
    return f'must be {words} {limit}{suffix}, got {_short_repr(error["input"])}{suffix}'


def _describe(error: dict[str, Any], raw: Any) -> tuple[tuple[Any, ...], str]:
    location = _clean_location(tuple(error['loc']), raw)
    kind = error['type']
    message = error['msg']
    if message.startswith('Value error, '):
        message = message[len('Value error, '):]
    if kind == 'extra_forbidden':
        model = _model_at(location[:-1], raw)
        allowed = ''
        if model is not None:
            keys = sorted(field.alias or name for name, field in model.model_fields.items())
            allowed = '; allowed keys here: ' + ', '.join(keys)
        return location, f'unknown key {location[-1]!r}{allowed}'
    if kind == 'missing' and location and isinstance(location[-1], int):
        # A fixed-length tuple such as a goal [x_m, y_m] with too few items.
        return location[:-1], (f'needs at least {location[-1] + 1} numbers, got '
                               f'{_short_repr(error["input"])}')
    if kind == 'missing':
        return location, 'required key is missing'
    if kind in ('too_long', 'too_short') and isinstance(error['input'], (list, tuple)):
        context = error.get('ctx') or {}
        bound = (f'at most {context["max_length"]}' if kind == 'too_long'
                 else f'at least {context["min_length"]}')
        return location, f'must have {bound} items, got {_short_repr(error["input"])}'
    if kind == 'tuple_type':
        return location, (f'must be a list of numbers such as [1.5, 2.0], got '
                          f'{_short_repr(error["input"])}')
    if kind in _LIMIT_WORDS:
        return location, _limit_message(kind, error, location, raw)
    message = message[0].lower() + message[1:] if message else message
    if kind in ('union_tag_invalid', 'union_tag_not_found'):
        return location, message
    return location, f'{message}, got {_short_repr(error["input"])}'


def format_validation_error(error: ValidationError, raw: Any, source: str) -> SpecError:
    """Return one SpecError that lists every problem with its key path."""
    problems: list[tuple[str, str]] = []
    items = error.errors(include_url=False)
    item_locations = [tuple(item['loc']) for item in items]
    for item in items:
        location = tuple(item['loc'])
        if item['type'] == 'too_short' and any(
                other[:len(location)] == location and len(other) > len(location)
                for other in item_locations):
            # The sequence only became short because some of its items were invalid, and
            # those items are reported on their own.
            continue
        cross = (item.get('ctx') or {}).get('error')
        if isinstance(cross, CrossFieldError):
            for location, message, value in cross.problems:
                problems.append((format_location(location),
                                 f'{message}, got {_short_repr(value)}'))
            continue
        location, message = _describe(item, raw)
        problems.append((format_location(location), message))
    count = len(problems)
    lines = [f'invalid fleet spec {source}: {count} problem{"s" if count != 1 else ""}']
    lines += [f'  {path}: {message}' for path, message in problems]
    return SpecError('\n'.join(lines), problems=problems)


def load_spec(source: Union[str, os.PathLike, Mapping[str, Any]]) -> FleetSpec:
    """Load and validate a fleet spec from a JSON or YAML file, or from a mapping.

    A relative map path in a file is resolved against the file's folder, then against the
    bundled data. In a mapping, it is resolved against the current folder first.
    Raises :class:`~mapl_robotics.errors.SpecError` listing every problem found.
    """
    if isinstance(source, Mapping):
        raw: Any = source
        base_dir = Path.cwd()
        name = '(mapping)'
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        raw = _read_file(path)
        base_dir = path.resolve().parent
        name = repr(str(path))
    else:
        raise SpecError(f'load_spec expects a file path or a mapping, not '
                        f'{type(source).__name__}')
    if not isinstance(raw, Mapping):
        raise SpecError(f'fleet spec {name} must be a mapping with the key roboticSystem at '
                        f'the top level, not {type(raw).__name__}')
    try:
        return FleetSpec.model_validate(raw, context={'base_dir': base_dir})
    except ValidationError as error:
        raise format_validation_error(error, raw, name) from None


def spec_json_schema() -> dict[str, Any]:
    """Return the JSON Schema (draft 2020-12) of the fleet spec document."""
    schema = FleetSpec.model_json_schema(by_alias=True, mode='validation')
    schema['$schema'] = 'https://json-schema.org/draft/2020-12/schema'
    schema['title'] = 'MAPL fleet spec'
    return schema
