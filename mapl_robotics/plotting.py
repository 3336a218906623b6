"""Plots of a world with planned trajectories and moving obstacles (matplotlib, no display).

Figures are built with :class:`matplotlib.figure.Figure` and the Agg canvas, never through
``pyplot``, so plotting changes no global state and works without a display.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import shapely
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Circle, PathPatch, Rectangle
from matplotlib.path import Path as MplPath

from mapl_robotics.geometry import MovingObstacle, Trajectory, World

__all__ = ['plot_world', 'plot_plan']


def _ring_path(coords: np.ndarray) -> MplPath:
    codes = np.full(len(coords), MplPath.LINETO, dtype=MplPath.code_type)
    codes[0] = MplPath.MOVETO
    codes[-1] = MplPath.CLOSEPOLY
    return MplPath(coords, codes)


def _geometry_path(geometries: Sequence[shapely.Geometry]) -> MplPath | None:
    """Return one compound path of every polygon ring (holes included) in ``geometries``."""
    rings: list[MplPath] = []
    polygons = shapely.get_parts(np.asarray(geometries, dtype=object))
    for polygon in polygons:
        if not isinstance(polygon, shapely.Polygon) or polygon.is_empty:
            continue
        rings.append(_ring_path(np.asarray(polygon.exterior.coords)))
        rings.extend(_ring_path(np.asarray(ring.coords)) for ring in polygon.interiors)
    return MplPath.make_compound_path(*rings) if rings else None


def plot_world(ax, world: World, *, obstacle_color: str = '0.3') -> None:
    """Draw the map boundary and static obstacles of ``world`` on a matplotlib axes."""
    x_min, y_min, x_max, y_max = world.bounds_m
    ax.add_patch(Rectangle((x_min, y_min), x_max - x_min, y_max - y_min, fill=False,
                           edgecolor='black', linewidth=1.0))
    path = _geometry_path(world.obstacles)
    if path is not None:
        ax.add_patch(PathPatch(path, facecolor=obstacle_color, edgecolor='none'))
    margin = 0.02 * max(x_max - x_min, y_max - y_min)
    ax.set_xlim(x_min - margin, x_max + margin)
    ax.set_ylim(y_min - margin, y_max + margin)
    ax.set_aspect('equal')
    ax.set_xlabel('x [m]')
    ax.set_ylabel('y [m]')


def plot_plan(world: World, trajectories: Mapping[str, Trajectory], *,
              radii_m: Mapping[str, float], output_path: Path,
              moving_obstacles: Sequence[MovingObstacle] = (), title: str = '') -> Path:
    """Write a PNG of ``world`` with each robot's path, start, goal and footprint.

    Moving obstacles are drawn along their predicted motion over the span of the plans.
    Returns ``output_path``.
    """
    x_min, y_min, x_max, y_max = world.bounds_m
    aspect = (y_max - y_min) / (x_max - x_min)
    width_in = 9.0
    height_in = float(np.clip(width_in * aspect, 4.0, 14.0)) + 0.8
    figure = Figure(figsize=(width_in, height_in), dpi=110)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    plot_world(ax, world)
    palette = [f'C{index % 10}' for index in range(len(trajectories))]
    end_s = max((trajectory.end_time_s for trajectory in trajectories.values()), default=0.0)
    for colour, (robot_id, trajectory) in zip(palette, trajectories.items()):
        xy = trajectory.xy_m
        radius_m = radii_m[robot_id]
        ax.plot(xy[:, 0], xy[:, 1], color=colour, linewidth=1.5,
                label=f'{robot_id}: {trajectory.length_m:.1f} m, {trajectory.duration_s:.1f} s')
        ax.add_patch(Circle(tuple(xy[0]), radius_m, facecolor='none', edgecolor=colour))
        ax.add_patch(Circle(tuple(xy[-1]), radius_m, facecolor=colour, alpha=0.4,
                            edgecolor=colour))
        ax.plot(*xy[-1], marker='*', color=colour, markersize=9)
    for obstacle in moving_obstacles:
        predicted = obstacle.predict(0.0, max(end_s, 1.0))
        xy = predicted.xy_m
        ax.plot(xy[:, 0], xy[:, 1], linestyle='--', color='crimson', linewidth=1.0)
        ax.add_patch(Circle(tuple(xy[0]), obstacle.radius_m, facecolor='crimson', alpha=0.3,
                            edgecolor='crimson'))
        ax.annotate(f'{obstacle.obstacle_id} ({obstacle.kind})', tuple(xy[0]), fontsize=7,
                    color='crimson')
    # Past a dozen robots a legend covers the map, and the colours repeat anyway.
    if 0 < len(trajectories) <= 12:
        ax.legend(loc='upper right', fontsize=7, framealpha=0.8)
    ax.set_title(title or world.name)
    figure.tight_layout()
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output_path)
    return output_path
