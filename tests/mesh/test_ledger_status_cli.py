"""`mapl ledger status`: one-line errors for invalid input, exit status 1 for a silent node."""

from __future__ import annotations

import json

import pytest
import zmq
from click.testing import CliRunner

from mapl_robotics.cli import main
from mapl_robotics.coordination import LocalCluster


@pytest.fixture
def silent_node():
    """Return the address of a ROUTER socket on loopback that reads requests and never replies."""
    context = zmq.Context()
    router = context.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    port = router.bind_to_random_port('tcp://127.0.0.1')
    yield f'127.0.0.1:{port}'
    router.close(0)
    context.term()


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize('address, expected', [
    ('not-an-address', 'HOST:PORT'),
    ('localhost:abc', '1-65535'),
    ('tcp://127.0.0.1:5555', 'drop it'),
    ('127.0.0.1:99999', '1-65535'),
    ('', 'HOST:PORT'),
])
def test_status_rejects_address(address, expected):
    result = CliRunner().invoke(main, ['ledger', 'status', '--timeout-s', '0.2', address])
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert 'Traceback' not in result.output
    assert result.stdout == ''
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith('Error: ')
    assert repr(address) in lines[0]
    assert expected in lines[0]


@pytest.mark.parametrize('timeout', ['nan', '-1', '0', 'inf'])
def test_status_rejects_timeout(timeout):
    result = CliRunner().invoke(main, ['ledger', 'status', '--timeout-s', timeout,
                                       '127.0.0.1:1'])
    assert result.exit_code == 2
    assert 'Traceback' not in result.output
    assert 'greater than 0' in result.output
    assert "'--timeout-s'" in result.output
    assert 'timeout_s=' not in result.output


def test_status_silent_node_exits_1(silent_node):
    result = CliRunner().invoke(main, ['ledger', 'status', '--timeout-s', '0.2', silent_node])
    assert result.exit_code == 1
    replies = _json_lines(result.stdout)
    assert len(replies) == 1
    assert replies[0]['self'] == silent_node
    assert 'no ledger node replied' in replies[0]['error']


def test_status_exit_follows_replies(tmp_path, silent_node):
    with LocalCluster(1, tmp_path / 'cluster') as cluster:
        cluster.wait_for_leader(timeout_s=60.0)
        live = cluster.client_addresses[0]

        result = CliRunner().invoke(main, ['ledger', 'status', '--timeout-s', '2', live])
        assert result.exit_code == 0, result.output
        replies = _json_lines(result.stdout)
        assert len(replies) == 1
        assert replies[0]['state'] == 'leader'
        assert 'error' not in replies[0]

        result = CliRunner().invoke(main, ['ledger', 'status', '--timeout-s', '0.5', live,
                                           silent_node])
        assert result.exit_code == 1
        replies = _json_lines(result.stdout)
        assert len(replies) == 2
        assert replies[0]['state'] == 'leader'
        assert replies[1]['self'] == silent_node
        assert 'error' in replies[1]
    assert not cluster.pids()
