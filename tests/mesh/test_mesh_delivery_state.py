"""Pure delivery state machines: ordering, de-duplication, floors, breaker, clock, faults."""

from __future__ import annotations

import numpy as np
import pytest

from mapl_robotics.errors import MeshConfigError
from mapl_robotics.mesh.breaker import BreakerState, CircuitBreaker
from mapl_robotics.mesh.clock import ClockSync
from mapl_robotics.mesh.delivery import (Acceptance, InboundStream, OutboundStream,
                                         RetryPolicy, RttEstimator)
from mapl_robotics.mesh.faults import FaultConfig, FaultInjector
from mapl_robotics.mesh.heartbeat import PeerLiveness
from mapl_robotics.mesh.schema import Message, Priority


def message(seq: int) -> Message:
    return Message(sender='a', session=1, priority=Priority.PLAN, seq=seq, kind='k',
                   deadline_fleet_s=0.0, payload=seq)


def test_inbound_delivers_in_order_once():
    stream = InboundStream(session=1, floor=1, window=8)
    status, ready = stream.accept(message(2))
    assert status == Acceptance.BUFFERED
    assert ready == []
    status, ready = stream.accept(message(1))
    assert status == Acceptance.DELIVERED
    assert [m.seq for m in ready] == [1, 2]
    status, ready = stream.accept(message(2))
    assert status == Acceptance.DUPLICATE
    assert ready == []


def test_inbound_rejects_beyond_window():
    stream = InboundStream(session=1, floor=1, window=4)
    status, _ = stream.accept(message(6))
    assert status == Acceptance.OUT_OF_WINDOW
    assert stream.buffered == 0


def test_inbound_floor_skips_abandoned_numbers():
    stream = InboundStream(session=1, floor=1, window=100)
    stream.accept(message(3))
    stream.accept(message(5))
    ready, skipped = stream.advance_floor(5)
    assert [m.seq for m in ready] == [3, 5]
    assert skipped == 3
    assert stream.delivered_through == 5


def test_inbound_floor_far_ahead_is_cheap():
    stream = InboundStream(session=1, floor=1, window=100)
    ready, skipped = stream.advance_floor(10**15)
    assert ready == []
    assert skipped == 10**15 - 1


def test_inbound_starts_at_sender_floor():
    stream = InboundStream(session=1, floor=40, window=8)
    assert stream.accept(message(39))[0] == Acceptance.DUPLICATE
    assert stream.accept(message(40))[0] == Acceptance.DELIVERED


def test_outbound_floor_tracks_lowest_outstanding():
    stream = OutboundStream()
    for _ in range(4):
        stream.outstanding[stream.allocate_seq()] = object()
    assert stream.floor == 1
    stream.acknowledge(1)
    stream.acknowledge(3)
    assert stream.floor == 2
    assert len(stream.acknowledge_through(4)) == 2
    assert stream.floor == 5


def test_retry_policy_backs_off_to_cap():
    policy = RetryPolicy(initial_s=0.01, multiplier=2.0, max_interval_s=0.05, jitter=0.0)
    rng = np.random.default_rng(0)
    waits = [policy.interval_s(attempt, rng) for attempt in range(1, 6)]
    assert waits == pytest.approx([0.01, 0.02, 0.04, 0.05, 0.05])
    assert policy.interval_s(1, rng, rto_s=0.03) == pytest.approx(0.03)


def test_retry_policy_rejects_bad_values():
    with pytest.raises(MeshConfigError, match='multiplier'):
        RetryPolicy(multiplier=0.5)


def test_rtt_estimator_follows_samples():
    estimator = RttEstimator()
    assert estimator.rto_s is None
    for _ in range(50):
        estimator.add_sample(0.002)
    assert estimator.srtt_s == pytest.approx(0.002)
    assert estimator.rto_s == pytest.approx(0.002, abs=1e-4)


def test_rtt_estimator_backs_off_before_the_first_sample():
    # An overloaded receiver acknowledges nothing before the first retry, so there is no
    # sample; timeouts must still stretch the retry interval instead of retrying at 5 ms.
    estimator = RttEstimator(initial_rto_s=0.005)
    assert estimator.rto_s is None
    estimator.on_timeout(1.0)
    estimator.on_timeout(1.001)  # within one timeout period: no second doubling
    assert estimator.rto_s == pytest.approx(0.010)
    for step in range(1, 10):
        estimator.on_timeout(1.0 + step)
    assert estimator.rto_s == pytest.approx(0.005 * RttEstimator.MAX_BACKOFF)
    estimator.add_sample(0.004)
    assert estimator.backoff == 1
    assert estimator.rto_s == pytest.approx(0.004 + RttEstimator.DEVIATION_FACTOR * 0.002)


def test_breaker_opens_probes_and_closes():
    breaker = CircuitBreaker(failure_threshold=3, cooldown_s=1.0)
    assert not breaker.record_failure(0.0)
    assert not breaker.record_failure(0.1)
    assert breaker.record_failure(0.2)
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allows_send(0.5)
    assert breaker.allows_send(1.3)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.record_success()
    assert breaker.state is BreakerState.CLOSED


def test_breaker_half_open_failure_reopens():
    breaker = CircuitBreaker(failure_threshold=1, cooldown_s=1.0)
    breaker.record_failure(0.0)
    breaker.allows_send(2.0)
    assert breaker.record_failure(2.0)
    assert breaker.state is BreakerState.OPEN
    assert breaker.opened_count == 2


def test_clock_offset_within_bound_for_asymmetric_delay():
    """A node 250 ms ahead: the estimate brackets the true offset within its bound."""
    skew_s = 0.25
    local = [1000.0 + skew_s]
    sync = ClockSync(clock=lambda: local[0])
    assert sync.error_bound_s is None
    # Reference time runs at 1000.0; 1 ms out, 3 ms back, 0.5 ms hold at the reference.
    t1 = 1000.0 + skew_s
    t2 = 1000.001
    t3 = 1000.0015
    t4 = 1000.0045 + skew_s
    sync.add_exchange(t1_s=t1, t2_s=t2, t3_s=t3, t4_s=t4)
    local[0] = t4
    true_offset_s = -skew_s
    assert sync.error_bound_s == pytest.approx(0.002, abs=1e-6)
    assert abs(sync.offset_s - true_offset_s) <= sync.error_bound_s
    assert abs(sync.fleet_time() - 1000.0045) <= sync.error_bound_s
    assert sync.is_synchronized(max_error_s=0.01)
    assert not sync.is_synchronized(max_error_s=0.001)


def test_clock_bound_grows_with_sample_age():
    now = [0.0]
    sync = ClockSync(clock=lambda: now[0], max_drift_ppm=100.0, max_sample_age_s=100.0)
    sync.add_exchange(t1_s=0.0, t2_s=0.0005, t3_s=0.0005, t4_s=0.001)
    now[0] = 10.0
    # Half the 1 ms round trip, plus 100 ppm of drift over the 9.999 s since the sample.
    assert sync.error_bound_s == pytest.approx(0.0005 + 9.999 * 100e-6)
    now[0] = 200.0
    assert sync.error_bound_s is None


def test_fault_injector_is_reproducible():
    config = FaultConfig(drop_p=0.1, duplicate_p=0.1, reorder_p=0.1, delay_p=0.1,
                         max_delay_s=0.005)
    first = FaultInjector(config, np.random.default_rng(7))
    second = FaultInjector(config, np.random.default_rng(7))
    outcomes = [first.release_delays_s() for _ in range(2000)]
    assert outcomes == [second.release_delays_s() for _ in range(2000)]
    dropped = sum(1 for delays in outcomes if not delays)
    duplicated = sum(1 for delays in outcomes if len(delays) == 2)
    assert 120 < dropped < 280
    assert 100 < duplicated < 260


def test_fault_config_rejects_bad_probability():
    with pytest.raises(MeshConfigError, match='drop_p'):
        FaultConfig(drop_p=1.5)


def test_liveness_detects_silence():
    liveness = PeerLiveness(['b'], interval_s=0.025, misses=3)
    assert not liveness.is_alive('b')
    assert liveness.heard('b', 1.0)
    assert liveness.expire(1.07) == []
    assert liveness.expire(1.076) == ['b']
    assert not liveness.is_alive('b')
