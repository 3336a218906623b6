"""Swept-disc edge checks decided by a clearance field alone, where it can.

Both functions report only what they prove. "Free" means every point of the segment is at
least ``radius_m + margin_m`` from every obstacle, and "blocked" means some point of it is
closer than ``radius_m - margin_m``. Everything else is left undecided for an exact check.

The proofs rest on one bound. If ``l0`` and ``l1`` are lower bounds of the obstacle distance at
the ends of a piece of length ``s``, every point of the piece is at least
``(l0 + l1 - s) / 2`` from every obstacle, because the distance is 1-Lipschitz along the piece.
"""

from __future__ import annotations

import math

import numpy as np

from mapl_robotics.geometry.clearance import ClearanceField

__all__ = ['classify_segments', 'free_prefix_fraction', 'march_segment']


def classify_segments(field: ClearanceField, start: np.ndarray, end: np.ndarray, *,
                      radius_m: float, margin_m: float, coarse_spacing_m: float,
                      fine_spacing_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Return masks of the segments the field proves free, and proves blocked.

    Each segment is first cut into pieces of at most ``coarse_spacing_m``. Pieces that the
    bound does not prove free are halved, level by level. Halving stops when a piece is
    proven free, when a midpoint's upper bound below the radius proves the segment blocked, or
    when the piece is shorter than ``fine_spacing_m``, which leaves its segment undecided.
    Long edges in open space therefore need few samples, and only the parts near obstacles
    are refined.
    """
    count = len(start)
    needed = radius_m + margin_m
    blocking = radius_m - margin_m
    delta = end - start
    length = np.hypot(delta[:, 0], delta[:, 1])

    pieces = np.maximum(1, np.ceil(length / coarse_spacing_m)).astype(np.intp)
    samples_per_segment = pieces + 1
    offsets = np.cumsum(samples_per_segment) - samples_per_segment
    sample_owner = np.repeat(np.arange(count), samples_per_segment)
    step = np.arange(sample_owner.size) - offsets[sample_owner]
    fraction = step / pieces[sample_owner]
    lower, upper = field.bounds_inside(
        start[sample_owner] + fraction[:, None] * delta[sample_owner])
    blocked = np.logical_or.reduceat(upper < blocking, offsets)
    undecided = np.zeros(count, dtype=bool)

    # Pieces between consecutive samples of the same segment.
    is_last = np.zeros(sample_owner.size, dtype=bool)
    is_last[offsets + samples_per_segment - 1] = True
    first = np.flatnonzero(~is_last)
    owner = sample_owner[first]
    t0 = fraction[first]
    t1 = fraction[first + 1]
    l0 = lower[first]
    l1 = lower[first + 1]

    # Halving from coarse_spacing_m reaches fine_spacing_m within this many levels for any sane
    # ratio; the cap only guards against a zero fine_spacing_m.
    for _level in range(64):
        if not owner.size:
            break
        piece_length = (t1 - t0) * length[owner]
        open_piece = (0.5 * (l0 + l1 - piece_length) < needed) & ~blocked[owner]
        open_piece &= ~undecided[owner]
        too_short = open_piece & (piece_length <= fine_spacing_m)
        undecided[owner[too_short]] = True
        open_piece &= ~too_short
        if not open_piece.any():
            break
        owner, t0, t1, l0, l1 = (owner[open_piece], t0[open_piece], t1[open_piece],
                                 l0[open_piece], l1[open_piece])
        middle = 0.5 * (t0 + t1)
        lower_middle, upper_middle = field.bounds_inside(
            start[owner] + middle[:, None] * delta[owner])
        blocked[owner[upper_middle < blocking]] = True
        owner = np.concatenate([owner, owner])
        t0, t1 = np.concatenate([t0, middle]), np.concatenate([middle, t1])
        l0, l1 = np.concatenate([l0, lower_middle]), np.concatenate([lower_middle, l1])

    else:
        undecided[owner] = True
    proven_free = ~blocked & ~undecided
    return proven_free, blocked


def march_segment(field: ClearanceField, x0: float, y0: float, x1: float, y1: float, *,
                  radius_m: float, margin_m: float, probe_spacing_m: float,
                  max_steps: int, max_probes: int) -> bool | None:
    """Return True (free) or False (blocked) when the field decides one segment, else None.

    Every point within ``lower - radius`` of a point whose lower bound is ``lower`` is free,
    so the march jumps that far along the segment (sphere tracing), for at most
    ``max_steps`` jumps. Where the bound becomes too small it probes up to ``max_probes``
    samples further on, ``probe_spacing_m`` apart, for an upper bound below the radius.
    """
    needed = radius_m + margin_m
    blocking = radius_m - margin_m
    length = math.hypot(x1 - x0, y1 - y0)
    lower_start, upper_start = field.bounds_at(x0, y0)
    lower_end, upper_end = field.bounds_at(x1, y1)
    if upper_start < blocking or upper_end < blocking:
        return False
    if 0.5 * (lower_start + lower_end - length) >= needed:
        return True
    if length == 0.0:
        return None
    travelled = 0.0
    lower = lower_start
    for _ in range(max_steps if lower_start >= needed else 0):
        travelled += lower - needed
        if travelled >= length:
            return True
        fraction = travelled / length
        lower, upper = field.bounds_at(x0 + fraction * (x1 - x0), y0 + fraction * (y1 - y0))
        if upper < blocking:
            return False
        if lower < needed:
            break
        if 0.5 * (lower + lower_end - (length - travelled)) >= needed:
            return True
    for step in range(1, max_probes + 1):
        fraction = (travelled + step * probe_spacing_m) / length
        if fraction >= 1.0:
            break
        _lower, upper = field.bounds_at(x0 + fraction * (x1 - x0), y0 + fraction * (y1 - y0))
        if upper < blocking:
            return False
    return None


def free_prefix_fraction(field: ClearanceField, start: np.ndarray, end: np.ndarray, *,
                         radius_m: float, margin_m: float, limit: np.ndarray,
                         max_steps: int) -> np.ndarray:
    """Return, per segment, a fraction ``t`` whose prefix ``[start, start + t (end - start)]``
    the field proves free; 0 when it proves nothing.

    Sphere tracing from ``start``, vectorized over segments: each step advances by the lower
    bound minus the radius, for at most ``max_steps`` steps and never past ``limit`` (per
    segment, the fraction where the segment leaves the map). The start itself must be proven
    free, otherwise the result is 0.
    """
    needed = radius_m + margin_m
    delta = end - start
    length = np.hypot(delta[:, 0], delta[:, 1])
    reach = np.zeros(len(start))
    lower, _upper = field.bounds_inside(start)
    active = (lower >= needed) & (limit > 0.0)
    with np.errstate(divide='ignore', invalid='ignore'):
        inverse_length = np.where(length > 0.0, 1.0 / length, np.inf)
    # A zero-length segment whose point is free is free all the way.
    reach[active & (length == 0.0)] = 1.0
    active &= length > 0.0
    for _step in range(max_steps):
        index = np.flatnonzero(active)
        if not index.size:
            break
        advanced = reach[index] + (lower[index] - needed) * inverse_length[index]
        done = advanced >= limit[index]
        reach[index] = np.minimum(advanced, limit[index])
        active[index[done]] = False
        index = index[~done]
        if not index.size:
            break
        sample = start[index] + reach[index, None] * delta[index]
        lower[index], _upper = field.bounds_inside(sample)
        active[index[lower[index] < needed]] = False
    return reach
