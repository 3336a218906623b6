"""Base model and shared field types of the fleet spec."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

__all__ = ['SpecModel', 'XY', 'Pose', 'Identifier', 'Port']


class SpecModel(BaseModel):
    """Strict, immutable spec section: unknown keys, coercions, NaN and infinity are rejected."""

    model_config = ConfigDict(
        extra='forbid',
        frozen=True,
        strict=True,
        allow_inf_nan=False,
        validate_by_alias=True,
        validate_by_name=False,
        serialize_by_alias=True,
        use_attribute_docstrings=True,
        validate_default=True,
    )


# Sequences arrive as lists from JSON and YAML; the tuple itself is lax, its items stay strict.
XY = Annotated[tuple[float, float], Field(strict=False)]
Pose = Annotated[tuple[float, ...], Field(strict=False, min_length=2, max_length=3)]

# Robot and obstacle ids become ROS 2 namespaces and node names, which allow only letters,
# digits and underscores and must not start with a digit.
Identifier = Annotated[str, StringConstraints(pattern=r'^[A-Za-z][A-Za-z0-9_]{0,62}$')]

Port = Annotated[int, Field(ge=1024, le=65535)]
