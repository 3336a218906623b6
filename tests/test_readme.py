"""The README's quick-start commands and its library examples."""

from __future__ import annotations

import doctest
import re

import pytest

from tests.conftest import REPO_ROOT

README = REPO_ROOT / 'README.md'


def fenced_blocks(language: str) -> list[str]:
    text = README.read_text(encoding='utf-8')
    return re.findall(rf'```{language}\n(.*?)```', text, flags=re.DOTALL)


def test_quick_start_has_two_commands():
    commands = fenced_blocks('sh')
    assert [command.strip() for command in commands] == [
        'python3 -m venv .venv && . .venv/bin/activate && pip install . && mapl sim',
        "python3 -m venv .venv && . .venv/bin/activate && pip install '.[test]' "
        '&& python -m pytest',
    ]


def test_ci_runs_readme_test_command():
    script = (REPO_ROOT / '.ci' / 'run').read_text(encoding='utf-8')
    assert "pip install '.[test]'" in script
    assert 'python -m pytest' in script
    assert 'set -euo pipefail' in script


def test_library_examples_run(monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    blocks = fenced_blocks('pycon')
    assert len(blocks) >= 2
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    globs: dict = {}
    for index, block in enumerate(blocks):
        test = parser.get_doctest(block, globs, f'README.md block {index}', str(README), 0)
        runner.run(test, out=lambda text: pytest.fail(text))
    assert runner.failures == 0
    assert runner.tries >= 10
