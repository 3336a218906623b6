"""Helpers for ROS 2 tests: node processes with captured output, and a probe node."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import rclpy
from rclpy.executors import SingleThreadedExecutor

__all__ = ['NodeProcess', 'Probe', 'free_ledger_addresses', 'node_command']


class NodeProcess:
    """A node started in its own process, with its output in a file."""

    def __init__(self, command: list[str], *, env: dict[str, str], log_path: Path,
                 cwd: Path | None = None) -> None:
        self.command = command
        self.log_path = log_path
        self._log = open(log_path, 'wb')
        self.process = subprocess.Popen(command, env=env, stdout=self._log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True, cwd=cwd)

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors='replace')

    def wait_for_output(self, text: str, *, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if text in self.output():
                return True
            if self.process.poll() is not None:
                return text in self.output()
            time.sleep(0.1)
        return False

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, *, timeout_s: float = 10.0) -> int:
        """SIGINT the process group, then SIGKILL it if it has not exited in time."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGINT)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=timeout_s)
        self._log.close()
        return self.process.returncode


def node_command(kind: str, *ros_args: str) -> list[str]:
    """Return the command line of an agent or fleet node with ``--ros-args``."""
    command = [sys.executable, '-m', 'mapl_robotics.ros.entry_points', kind]
    if ros_args:
        command += ['--ros-args', *ros_args]
    return command


class Probe:
    """A test-side node in its own rclpy context, with helpers that spin to a deadline."""

    def __init__(self, domain_id: int, name: str = 'probe') -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def spin_until(self, predicate: Callable[[], bool], *, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate():
                return True
            self.executor.spin_once(timeout_sec=0.05)
        return predicate()

    def collect(self, message_type, topic: str, qos) -> list:
        received: list = []
        self.node.create_subscription(message_type, topic, received.append, qos)
        return received

    def wait_for_subscribers(self, publisher, count: int = 1, *, timeout_s: float) -> bool:
        return self.spin_until(lambda: publisher.get_subscription_count() >= count,
                               timeout_s=timeout_s)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def free_ledger_addresses(count: int) -> list[str]:
    """Return ``count`` ledger Raft addresses on 127.0.0.1 whose ports and client ports (Raft
    port + 1000) were all free a moment ago."""
    import socket
    found: list[str] = []
    for _ in range(200):
        if len(found) == count:
            break
        sockets = []
        try:
            raft = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(raft)
            raft.bind(('127.0.0.1', 0))
            port = raft.getsockname()[1]
            if port + 1000 > 65535 or any(a.endswith(f':{port}') for a in found):
                continue
            client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(client)
            client.bind(('127.0.0.1', port + 1000))
            found.append(f'127.0.0.1:{port}')
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    if len(found) < count:
        raise RuntimeError(f'found only {len(found)} of {count} free ledger port pairs')
    return found
