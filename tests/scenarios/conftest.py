"""Fixtures of the end-to-end scenario tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def out_dir(tmp_path):
    return tmp_path / 'run'
