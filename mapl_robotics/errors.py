"""Exception hierarchy of mapl_robotics.

Every error raised on purpose by the library derives from :class:`MaplError`. Subclasses also
derive from the builtin exception a caller would naturally catch (``ValueError``,
``FileNotFoundError``, ``TimeoutError``), so ``except ValueError`` keeps working. Messages name
the offending value and say what to do about it.
"""

from __future__ import annotations

__all__ = [
    'MaplError',
    'SpecError',
    'SpecFileNotFoundError',
    'MapError',
    'MapFileNotFoundError',
    'MapFormatError',
    'EmptyMapError',
    'InvalidGeometryError',
    'InvalidCoordinateError',
    'OutOfBoundsError',
    'TrajectoryError',
    'PlanningError',
    'StartInCollisionError',
    'GoalInCollisionError',
    'GoalUnreachableError',
    'PlanningTimeoutError',
    'PlannerConfigError',
    'BlockedByTrafficError',
    'LedgerError',
    'ProposalRejectedError',
    'NotAuthorizedError',
    'LedgerUnavailableError',
    'LedgerRequestError',
    'LedgerConfigError',
    'ClientBusyError',
    'ClientClosedError',
    'MeshError',
    'MessageFormatError',
    'MeshConfigError',
    'PeerUnknownError',
    'DeliveryFailedError',
    'SimulationError',
    'ScenarioError',
    'RosBridgeError',
    'UnknownFrameError',
    'LaunchArgumentError',
]


class MaplError(Exception):
    """Root of every exception that mapl_robotics raises on purpose."""


class SpecError(MaplError, ValueError):
    """A fleet spec (the MAPL document) is invalid.

    ``problems`` lists ``(key_path, message)`` for each problem found, when known.
    """

    def __init__(self, message: str, *, problems=()) -> None:
        super().__init__(message)
        self.problems: tuple[tuple[str, str], ...] = tuple(problems)

    def __reduce__(self):
        return _rebuild_spec_error, (type(self), str(self), self.problems)


def _rebuild_spec_error(cls: type, message: str, problems: tuple) -> 'SpecError':
    return cls(message, problems=problems)


class SpecFileNotFoundError(SpecError, FileNotFoundError):
    """A fleet spec file does not exist."""


class MapError(MaplError):
    """A map could not be loaded or is unusable."""


class MapFileNotFoundError(MapError, FileNotFoundError):
    """A map file, or the image it refers to, does not exist."""


class MapFormatError(MapError, ValueError):
    """A map file exists but its content does not follow its format."""


class EmptyMapError(MapError, ValueError):
    """A map has no free space, or no area at all."""


class InvalidGeometryError(MapError, ValueError):
    """A polygon or other shape is invalid and could not be repaired as requested."""


class InvalidCoordinateError(MaplError, ValueError):
    """A coordinate is NaN, infinite or otherwise not a usable number."""


class OutOfBoundsError(MaplError, ValueError):
    """A position lies outside the map bounds."""


class TrajectoryError(MaplError, ValueError):
    """A trajectory is malformed: times not increasing, wrong shapes, non-finite values."""


class PlanningError(MaplError):
    """A planner could not produce a path. Subclasses say why."""


class StartInCollisionError(PlanningError, ValueError):
    """The start position collides with an obstacle for the robot's radius."""


class GoalInCollisionError(PlanningError, ValueError):
    """The goal position collides with an obstacle for the robot's radius."""


class GoalUnreachableError(PlanningError):
    """No collision-free path connects start and goal."""


class PlanningTimeoutError(PlanningError, TimeoutError):
    """The planner spent its time or iteration budget without finding a path."""


class PlannerConfigError(PlanningError, ValueError):
    """A robot model or planner setting is out of range or of the wrong kind."""


class BlockedByTrafficError(PlanningError):
    """No conflict-free trajectory exists within the budget because of other robots or moving
    obstacles. ``blocking_ids`` lists the robot and obstacle ids that block."""

    def __init__(self, message: str, *, blocking_ids=()) -> None:
        super().__init__(message)
        self.blocking_ids: tuple[str, ...] = tuple(blocking_ids)

    def __reduce__(self):
        return _rebuild_blocked, (str(self), self.blocking_ids)


def _rebuild_blocked(message: str, blocking_ids: tuple[str, ...]) -> BlockedByTrafficError:
    return BlockedByTrafficError(message, blocking_ids=blocking_ids)


class LedgerError(MaplError):
    """The consensus plan ledger failed an operation."""


class ProposalRejectedError(LedgerError):
    """A proposed trajectory was rejected by the ledger, for example because it conflicts."""


class NotAuthorizedError(LedgerError, PermissionError):
    """A client tried to act for a robot id that is not its own."""


class LedgerUnavailableError(LedgerError, TimeoutError):
    """No ledger leader with a quorum answered within the deadline."""


class LedgerRequestError(LedgerError, ValueError):
    """A ledger request is malformed or oversized: bad field, wrong type, too many samples."""


class LedgerConfigError(LedgerError, ValueError):
    """Ledger settings are inconsistent, for example an election timeout below 3 heartbeats."""


class ClientBusyError(LedgerError, RuntimeError):
    """A ledger client was called from a second thread while a request was in progress."""


class ClientClosedError(LedgerError, RuntimeError):
    """A ledger client was called after its ``close()``."""


class MeshError(MaplError):
    """The ZeroMQ mesh failed an operation."""


class MessageFormatError(MeshError, ValueError):
    """A mesh message could not be encoded or decoded.

    ``reason`` is a short code (for example ``frame_count`` or ``oversized``) that the mesh
    counts per kind of malformed input.
    """

    def __init__(self, message: str, *, reason: str = 'invalid') -> None:
        super().__init__(message)
        self.reason = reason


class MeshConfigError(MeshError, ValueError):
    """A mesh configuration value (peer list, keys, timing) is invalid."""


class PeerUnknownError(MeshError, KeyError):
    """A message was addressed to a peer the mesh does not know."""

    def __str__(self) -> str:
        # KeyError's own text is the repr of its argument, with quotes around the message.
        return Exception.__str__(self)


class DeliveryFailedError(MeshError, TimeoutError):
    """A message was not acknowledged before its deadline."""


class SimulationError(MaplError):
    """The simulator failed."""


class ScenarioError(SimulationError, ValueError):
    """A scenario file is invalid."""


class RosBridgeError(MaplError):
    """The ROS 2 bridge rejected a message, a parameter or a launch argument."""


class UnknownFrameError(RosBridgeError, ValueError):
    """A stamped message names a coordinate frame that the bridge does not accept."""


class LaunchArgumentError(RosBridgeError, ValueError):
    """A fleet launch argument (robot count or list, map, spec file) is invalid."""
