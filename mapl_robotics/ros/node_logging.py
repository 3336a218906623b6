"""Route ``logging`` records of the library to a node's rclpy logger, and throttle repeats.

Library modules log with ``logging.getLogger(__name__)``. Inside a node, :class:`RclpyHandler`
forwards those records to the node logger, so they reach the console and ``/rosout`` with the
node's name like any other ROS log line.
"""

from __future__ import annotations

import logging
import time

__all__ = ['RclpyHandler', 'Throttle', 'attach_to_node', 'detach_from_node']

class RclpyHandler(logging.Handler):
    """A ``logging.Handler`` that writes each record to an rclpy logger."""

    def __init__(self, rclpy_logger) -> None:
        super().__init__()
        self._logger = rclpy_logger
        self.setFormatter(logging.Formatter('%(name)s: %(message)s'))

    def emit(self, record: logging.LogRecord) -> None:
        # rclpy ties a severity to each calling line, so every severity has its own call.
        try:
            text = self.format(record)
            if record.levelno >= logging.ERROR:
                self._logger.error(text)
            elif record.levelno >= logging.WARNING:
                self._logger.warning(text)
            elif record.levelno >= logging.INFO:
                self._logger.info(text)
            else:
                self._logger.debug(text)
        except Exception:  # noqa: BLE001 - logging must never raise into the caller
            self.handleError(record)


def attach_to_node(node, *, level: int = logging.INFO) -> RclpyHandler:
    """Forward records of the ``mapl_robotics`` logger tree to ``node``'s logger."""
    handler = RclpyHandler(node.get_logger())
    package_logger = logging.getLogger('mapl_robotics')
    package_logger.addHandler(handler)
    package_logger.setLevel(level)
    package_logger.propagate = False
    return handler


def detach_from_node(handler: RclpyHandler) -> None:
    """Stop forwarding to the node (before it is destroyed); records then reach the standard
    ``logging`` handlers again."""
    package_logger = logging.getLogger('mapl_robotics')
    package_logger.removeHandler(handler)
    package_logger.propagate = True


class Throttle:
    """Allow one event per key per ``period_s`` on the steady clock, and count the rest."""

    def __init__(self, *, period_s: float = 1.0) -> None:
        self._period_s = period_s
        self._last_s: dict[str, float] = {}
        self.suppressed: dict[str, int] = {}

    def allow(self, key: str) -> bool:
        now_s = time.monotonic()
        last_s = self._last_s.get(key)
        if last_s is not None and now_s - last_s < self._period_s:
            self.suppressed[key] = self.suppressed.get(key, 0) + 1
            return False
        self._last_s[key] = now_s
        return True

    def take_suppressed(self, key: str) -> int:
        """Return and reset how many events of ``key`` were suppressed."""
        return self.suppressed.pop(key, 0)
