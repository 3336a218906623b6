"""A ledger client rejects invalid timeouts and addresses, and every call after close()."""

from __future__ import annotations

import math

import pytest
import zmq

from mapl_robotics.coordination import LedgerClient, generate_key_pair
from mapl_robotics.coordination.client import ZmqClientTransport
from mapl_robotics.errors import ClientClosedError, LedgerConfigError, LedgerError
from mapl_robotics.geometry.trajectory import Trajectory

BAD_TIMEOUTS = [math.nan, math.inf, -math.inf, -1.0, 0, 0.0, '1', None, True]


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


@pytest.fixture
def robot_client(silent_node):
    private_key, _ = generate_key_pair()
    client = LedgerClient([silent_node], robot_id='r1', private_key=private_key,
                          timeout_s=0.2, attempt_timeout_s=0.1)
    yield client
    client.close()


class _NamedNodeTransport:
    """A transport that names nodes like mesh peers and never delivers a reply."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, address: str, request_id: bytes, payload: bytes) -> bool:
        self.sent.append(address)
        return True

    def receive(self, timeout_s: float):
        return None

    def close(self) -> None:
        pass


def _robot_calls(client: LedgerClient, timeout_s):
    """Return every call that takes ``timeout_s``, each as a zero-argument function."""
    trajectory = Trajectory.from_list([(0.0, 0.0, 0.0, 0.0), (1.0, 1.0, 0.0, 0.0)])
    address = client.addresses[0]
    return {
        'request': lambda: client.request({'op': 'status'}, timeout_s=timeout_s),
        'status': lambda: client.status(address, timeout_s=timeout_s),
        'read': lambda: client.read(timeout_s=timeout_s),
        'history': lambda: client.history(address, timeout_s=timeout_s),
        'history_records': lambda: client.history_records(address, timeout_s=timeout_s),
        'register': lambda: client.register(radius_m=0.3, max_speed_mps=1.0,
                                            pose=(0.0, 0.0, 0.0), now_s=0.0,
                                            timeout_s=timeout_s),
        'propose': lambda: client.propose(trajectory, base_version=0, now_s=0.0,
                                          timeout_s=timeout_s),
        'park': lambda: client.park(now_s=0.0, timeout_s=timeout_s),
        'deregister': lambda: client.deregister(now_s=0.0, timeout_s=timeout_s),
    }


# -- timeouts ------------------------------------------------------------------------------------

@pytest.mark.parametrize('name', ['timeout_s', 'attempt_timeout_s'])
@pytest.mark.parametrize('value', BAD_TIMEOUTS, ids=repr)
def test_constructor_rejects_timeout(name, value):
    with pytest.raises(LedgerConfigError) as caught:
        LedgerClient(['127.0.0.1:1'], **{name: value})
    message = str(caught.value)
    assert f'{name}={value!r}' in message
    assert 'finite number of seconds greater than 0' in message


@pytest.mark.parametrize('value', [0.001, 1, 2.5, 3600.0])
def test_constructor_accepts_timeout(value):
    client = LedgerClient(['127.0.0.1:1'], timeout_s=value, attempt_timeout_s=value)
    try:
        assert client.timeout_s == float(value)
        assert client.attempt_timeout_s == float(value)
    finally:
        client.close()


@pytest.mark.timeout(30)
@pytest.mark.parametrize('value', [math.nan, -1.0, 0.0, '1'], ids=repr)
def test_calls_reject_timeout(robot_client, value):
    for name, call in _robot_calls(robot_client, value).items():
        with pytest.raises(LedgerConfigError) as caught:
            call()
        assert f'timeout_s={value!r}' in str(caught.value), name


@pytest.mark.timeout(30)
def test_nan_timeout_read_returns(silent_node):
    # Before the check, a NaN deadline was never reached and read() looped forever.
    client = LedgerClient([silent_node], timeout_s=0.2)
    try:
        with pytest.raises(LedgerConfigError):
            client.read(timeout_s=math.nan)
    finally:
        client.close()


# -- addresses -----------------------------------------------------------------------------------

@pytest.mark.parametrize('addresses, expected', [
    (['not-an-address'], ["'not-an-address'", 'HOST:PORT']),
    (['localhost:abc'], ["'localhost:abc'", '1-65535']),
    ([''], ["''", 'HOST:PORT']),
    (['   '], ["'   '", 'HOST:PORT']),
    (['tcp://127.0.0.1:5555'], ["'tcp://127.0.0.1:5555'", 'drop it', "'127.0.0.1:5555'"]),
    (['127.0.0.1:99999'], ["'127.0.0.1:99999'", '1-65535']),
    (['127.0.0.1:0'], ["'127.0.0.1:0'", '1-65535']),
    (['127.0.0.1:-5'], ["'127.0.0.1:-5'", '1-65535']),
    ([':5555'], ["':5555'", 'HOST:PORT']),
    (['bad host:5555'], ["'bad host:5555'", 'HOST:PORT']),
    (['::1:5555'], ["'::1:5555'", '[::1]:47100']),
    (['127.0.0.1:1', 'x'], ["'x'", 'HOST:PORT']),
    ([5555], ['5555', 'HOST:PORT']),
    ([None], ['None', 'HOST:PORT']),
    ('single-string', ["'single-string'", "['single-string']"]),
    ([], ['empty', 'HOST:PORT']),
    (None, ['None', 'list of HOST:PORT']),
    (5555, ['5555', 'list of HOST:PORT']),
], ids=repr)
def test_constructor_rejects_addresses(addresses, expected):
    with pytest.raises(LedgerConfigError) as caught:
        LedgerClient(addresses)
    for fragment in expected:
        assert fragment in str(caught.value)


@pytest.mark.parametrize('addresses', [
    ['127.0.0.1:1'], ['localhost:65535'], ['[::1]:47100'], ('127.0.0.1:1', 'node-2.local:2'),
], ids=repr)
def test_constructor_accepts_addresses(addresses):
    client = LedgerClient(addresses)
    try:
        assert client.addresses == list(addresses)
    finally:
        client.close()


def test_explicit_zmq_transport_checks_addresses():
    transport = ZmqClientTransport()
    try:
        with pytest.raises(LedgerConfigError):
            LedgerClient(['ledger_0'], transport=transport)
    finally:
        transport.close()


def test_closed_zmq_transport_raises(free_port):
    transport = ZmqClientTransport()
    # Nothing listens there, so the send is not queued, but the socket opens.
    assert transport.send(f'127.0.0.1:{free_port}', b'id', b'payload') is False
    assert transport.receive(0.01) is None
    transport.close()
    with pytest.raises(ClientClosedError, match='create a new ZmqClientTransport'):
        transport.send(f'127.0.0.1:{free_port}', b'id', b'payload')
    with pytest.raises(ClientClosedError):
        transport.receive(0.01)


def test_other_transport_takes_node_names():
    transport = _NamedNodeTransport()
    client = LedgerClient(['ledger_0', 'ledger_1'], transport=transport, timeout_s=0.05,
                          attempt_timeout_s=0.01)
    with pytest.raises(LedgerConfigError):
        LedgerClient([''], transport=_NamedNodeTransport())
    with pytest.raises(LedgerError):
        client.request({'op': 'status'}, address='ledger_1')
    assert set(transport.sent) == {'ledger_1'}
    client.close()


@pytest.mark.parametrize('address', ['tcp://127.0.0.1:5555', 'not-an-address', '127.0.0.1:0',
                                     ''])
def test_request_rejects_address(robot_client, address):
    calls = {
        'request': lambda: robot_client.request({'op': 'status'}, address=address),
        'status': lambda: robot_client.status(address),
        'history': lambda: robot_client.history(address),
    }
    for name, call in calls.items():
        with pytest.raises(LedgerConfigError) as caught:
            call()
        assert repr(address) in str(caught.value), name


# -- close ---------------------------------------------------------------------------------------

def test_calls_after_close_raise(robot_client):
    robot_client.close()
    for name, call in _robot_calls(robot_client, None).items():
        with pytest.raises(ClientClosedError) as caught:
            call()
        assert 'after close()' in str(caught.value), name
        assert isinstance(caught.value, LedgerError)
    assert robot_client.closed


def test_close_twice_is_harmless(silent_node):
    client = LedgerClient([silent_node])
    assert not client.closed
    client.close()
    client.close()
    assert client.closed


def test_context_exit_closes_client(silent_node):
    with LedgerClient([silent_node], timeout_s=0.2) as client:
        pass
    with pytest.raises(ClientClosedError):
        client.read()
