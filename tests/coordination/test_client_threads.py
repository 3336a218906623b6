"""A ledger client serves one thread at a time and raises ClientBusyError for a second one."""

from __future__ import annotations

import threading

import pytest
import zmq

from mapl_robotics.coordination import LedgerClient
from mapl_robotics.errors import ClientBusyError, LedgerUnavailableError


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


def test_second_thread_gets_busy_error(silent_node):
    client = LedgerClient([silent_node], timeout_s=3.0)
    started = threading.Event()
    outcome: list[BaseException] = []

    def first_request():
        started.set()
        try:
            client.request({'op': 'status'})
        except BaseException as error:  # noqa: BLE001 - the test inspects it
            outcome.append(error)

    thread = threading.Thread(target=first_request)
    thread.start()
    try:
        assert started.wait(5.0)
        # The first request waits up to 3 s for a reply that never comes.
        busy = None
        for _ in range(100):
            try:
                client.request({'op': 'read', 'since_version': 0}, timeout_s=0.05)
            except ClientBusyError as error:
                busy = error
                break
            except LedgerUnavailableError:
                continue  # the first thread had not entered its request yet
        assert busy is not None
        assert "'read'" in str(busy)
        assert 'own LedgerClient' in str(busy)
    finally:
        thread.join(10.0)
        client.close()
    assert not thread.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], LedgerUnavailableError)


def test_client_reusable_after_thread_ends(silent_node):
    client = LedgerClient([silent_node], timeout_s=0.2)
    try:
        worker = threading.Thread(target=lambda: pytest.raises(LedgerUnavailableError,
                                                                client.request, {'op': 'status'}))
        worker.start()
        worker.join(5.0)
        assert not worker.is_alive()
        with pytest.raises(LedgerUnavailableError):
            client.request({'op': 'status'})
    finally:
        client.close()
