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
    'LedgerError',
    'ProposalRejectedError',
    'NotAuthorizedError',
    'LedgerUnavailableError',
    'MeshError',
    'MessageFormatError',
    'PeerUnknownError',
    'DeliveryFailedError',
    'SimulationError',
    'ScenarioError',
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


class LedgerError(MaplError):
    """The consensus plan ledger failed an operation."""


class ProposalRejectedError(LedgerError):
    """A proposed trajectory was rejected by the ledger, for example because it conflicts."""


class NotAuthorizedError(LedgerError, PermissionError):
    """A client tried to act for a robot id that is not its own."""


class LedgerUnavailableError(LedgerError, TimeoutError):
    """No ledger leader with a quorum answered within the deadline."""


class MeshError(MaplError):
    """The ZeroMQ mesh failed an operation."""


class MessageFormatError(MeshError, ValueError):
    """A mesh message could not be encoded or decoded."""


class PeerUnknownError(MeshError, KeyError):
    """A message was addressed to a peer the mesh does not know."""


class DeliveryFailedError(MeshError, TimeoutError):
    """A message was not acknowledged before its deadline."""


class SimulationError(MaplError):
    """The simulator failed."""


class ScenarioError(SimulationError, ValueError):
    """A scenario file is invalid."""
