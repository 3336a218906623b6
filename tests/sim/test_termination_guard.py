"""SigtermGuard: SIGTERM raised as SimulationTerminated, deferred during clean-up, restored."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from mapl_robotics.sim.termination import SigtermGuard, SimulationTerminated


def _send_sigterm() -> None:
    # CPython runs Python signal handlers in the main thread between bytecodes, so the handler
    # has run by the time the statement after os.kill starts.
    os.kill(os.getpid(), signal.SIGTERM)


@pytest.fixture
def recording_handler():
    """Install a SIGTERM handler that records signals, as a library caller might."""
    received = []
    previous = signal.signal(signal.SIGTERM, lambda number, frame: received.append(number))
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_guard_raises_on_sigterm(recording_handler):
    handler = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SimulationTerminated) as caught:
        with SigtermGuard():
            _send_sigterm()
    assert caught.value.signal_number == signal.SIGTERM
    assert isinstance(caught.value, KeyboardInterrupt)
    assert signal.getsignal(signal.SIGTERM) is handler
    assert recording_handler == []


def test_guard_restores_handler_without_signal(recording_handler):
    handler = signal.getsignal(signal.SIGTERM)
    with SigtermGuard():
        assert signal.getsignal(signal.SIGTERM) is not handler
    assert signal.getsignal(signal.SIGTERM) is handler
    _send_sigterm()
    assert recording_handler == [signal.SIGTERM]


def test_deferred_raises_after_block(recording_handler):
    steps = []
    with pytest.raises(SimulationTerminated):
        with SigtermGuard() as guard:
            with guard.deferred():
                _send_sigterm()
                steps.append('clean-up finished')
    assert steps == ['clean-up finished']


def test_second_sigterm_ignored_in_cleanup(recording_handler):
    steps = []
    with pytest.raises(SimulationTerminated):
        with SigtermGuard() as guard:
            try:
                _send_sigterm()
            finally:
                with guard.deferred():
                    _send_sigterm()
                    steps.append('clean-up finished')
    assert steps == ['clean-up finished']
    assert recording_handler == []


def test_guard_inactive_outside_main_thread(recording_handler):
    handlers = []

    def enter_guard() -> None:
        with SigtermGuard():
            handlers.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=enter_guard)
    thread.start()
    thread.join(timeout=10.0)
    assert handlers == [signal.getsignal(signal.SIGTERM)]
