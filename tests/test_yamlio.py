"""The shared YAML loader: exponent notation reads as a number, as in ROS's yaml-cpp."""

from __future__ import annotations

import pytest
import yaml

from mapl_robotics.yamlio import load_yaml


@pytest.mark.parametrize('text, expected', [
    ('5e-2', 0.05),
    ('-1e1', -10.0),
    ('3e-1', 0.3),
    ('1.0e5', 100000.0),
    ('+2E+3', 2000.0),
    ('.5e1', 5.0),
    ('1.5e-3', 0.0015),
])
def test_exponent_notation_is_float(text, expected):
    value = load_yaml(f'value: {text}')['value']
    assert isinstance(value, float)
    assert value == pytest.approx(expected)


@pytest.mark.parametrize('text, expected', [
    ('0.05', 0.05),
    ('12', 12),
    ('e5', 'e5'),
    ('1e', '1e'),
    ('1e5x', '1e5x'),
    ('1.2.3e4', '1.2.3e4'),
    ("'5e-2'", '5e-2'),
    ('yes', True),
])
def test_other_scalars_resolve_as_before(text, expected):
    assert load_yaml(f'value: {text}')['value'] == expected


def test_plain_safe_load_differs():
    # The reason for the shared loader: YAML 1.1 rules in PyYAML read this as a string.
    assert yaml.safe_load('value: 5e-2')['value'] == '5e-2'


def test_unsafe_tags_rejected():
    with pytest.raises(yaml.YAMLError):
        load_yaml('value: !!python/object/apply:os.system ["true"]')
