"""Simulation clock, shared clock and real-time pacing."""

from __future__ import annotations

import multiprocessing

import pytest

from mapl_robotics.errors import SimulationError
from mapl_robotics.sim.clock import RealTimePacer, SharedClock, SimClock


def test_sim_clock_steps_without_drift():
    clock = SimClock(step_s=1.0 / 60.0)
    for _ in range(6000):
        clock.advance()
    assert clock.now_s() == 100.0
    assert clock() == clock.now_s()
    assert clock.steps == 6000


@pytest.mark.parametrize('step_s', [0.0, -1.0, float('nan')])
def test_sim_clock_rejects_bad_step(step_s):
    with pytest.raises(SimulationError, match='step_s'):
        SimClock(step_s=step_s)


def _read_in_child(path, queue):
    with SharedClock.attach(path) as clock:
        queue.put(clock.now_s())


def test_shared_clock_read_from_other_process(tmp_path):
    path = tmp_path / 'clock.bin'
    with SharedClock.create(path, t_start_s=0.0) as writer:
        writer.publish(12.5)
        context = multiprocessing.get_context('spawn')
        queue = context.Queue()
        child = context.Process(target=_read_in_child, args=(str(path), queue))
        child.start()
        try:
            assert queue.get(timeout=60.0) == 12.5
        finally:
            child.join(timeout=30.0)
            if child.is_alive():
                child.kill()
                child.join()
        assert child.exitcode == 0


def test_shared_clock_reader_cannot_publish(tmp_path):
    path = tmp_path / 'clock.bin'
    with SharedClock.create(path) as writer, SharedClock.attach(path) as reader:
        writer.publish(1.0)
        assert reader() == 1.0
        with pytest.raises(SimulationError, match='read-only'):
            reader.publish(2.0)


def test_shared_clock_attach_missing_or_foreign_file(tmp_path):
    with pytest.raises(SimulationError, match='does not exist'):
        SharedClock.attach(tmp_path / 'missing.bin')
    foreign = tmp_path / 'foreign.bin'
    foreign.write_bytes(b'x' * 64)
    with pytest.raises(SimulationError, match='not a mapl shared clock'):
        SharedClock.attach(foreign)


def test_pacer_sleeps_until_wall_time_and_records_lag():
    now = [100.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    pacer = RealTimePacer(rate=2.0, wall_clock=lambda: now[0], sleep=sleep)
    pacer.start(0.0)
    assert pacer.wait_for(1.0) == 0.0
    assert slept == [0.5]
    now[0] += 2.0  # the simulation fell behind by 1.5 s of wall time
    assert pacer.wait_for(2.0) == pytest.approx(1.5)
    assert pacer.max_lag_s == pytest.approx(1.5)


def test_shared_clock_reader_waits_out_a_write(tmp_path):
    import struct
    import threading
    path = tmp_path / 'clock.bin'
    with SharedClock.create(path) as writer, SharedClock.attach(path) as reader:
        writer.publish(3.0)
        # Leave the sequence odd, as a writer preempted halfway through a write does.
        struct.pack_into('<Q', writer._mapping, 4, 2 * writer._sequence + 1)
        timer = threading.Timer(0.05, writer.publish, args=(4.0,))
        timer.start()
        try:
            assert reader() == 4.0
        finally:
            timer.join()
