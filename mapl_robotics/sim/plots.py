"""Pictures of a run: the map with every robot's path, and an optional GIF animation.

Matplotlib runs on its non-interactive Agg backend, selected through the object API
(``Figure`` plus ``FigureCanvasAgg``), so plotting never opens a window and never changes the
global pyplot state of a program that imports the simulator.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from matplotlib.animation import FuncAnimation, PillowWriter
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PatchCollection
from matplotlib.figure import Figure
from matplotlib.patches import Circle
from matplotlib.patches import Polygon as PolygonPatch
from shapely.geometry import Polygon

from mapl_robotics.geometry.world import World

__all__ = ['plot_trajectories', 'animate_run']

_LOG = logging.getLogger(__name__)


def _figure(world: World, *, dpi: int = 110) -> tuple[Figure, object]:
    width_m, height_m = world.width_m, world.height_m
    aspect = height_m / width_m if width_m > 0 else 1.0
    width_in = 12.0
    height_in = float(np.clip(width_in * aspect + 1.2, 3.0, 14.0))
    figure = Figure(figsize=(width_in, height_in), dpi=dpi)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    axes.set_aspect('equal')
    x_min, y_min, x_max, y_max = world.bounds_m
    axes.set_xlim(x_min, x_max)
    axes.set_ylim(y_min, y_max)
    axes.set_xlabel('x [m]')
    axes.set_ylabel('y [m]')
    patches = []
    for obstacle in world.obstacles:
        parts = [obstacle] if isinstance(obstacle, Polygon) else list(getattr(obstacle, 'geoms',
                                                                              []))
        for part in parts:
            if isinstance(part, Polygon) and not part.is_empty:
                patches.append(PolygonPatch(np.asarray(part.exterior.coords), closed=True))
    axes.add_collection(PatchCollection(patches, facecolor='0.35', edgecolor='none'))
    return figure, axes


def _colours(count: int):
    from matplotlib import colormaps
    cmap = colormaps['tab20' if count > 10 else 'tab10']
    return [cmap(index % cmap.N) for index in range(count)]


def plot_trajectories(path: str | Path, world: World, *,
                      robot_paths: Mapping[str, np.ndarray], radii_m: Mapping[str, float],
                      goals_xy_m: Mapping[str, Sequence[float]],
                      obstacle_paths: Mapping[str, np.ndarray] | None = None,
                      obstacle_radii_m: Mapping[str, float] | None = None,
                      closest: Mapping | None = None, collisions: Sequence[Mapping] = (),
                      title: str = '') -> Path:
    """Draw the map, each robot's driven path, moving obstacles and the closest approach.

    ``robot_paths`` maps robot ids to ``(T, 2)`` positions; ``closest`` has ``pair``, ``xy_m``,
    ``gap_m`` and ``time_s`` of the robot pair that came closest.
    """
    figure, axes = _figure(world)
    robot_ids = list(robot_paths)
    for colour, robot_id in zip(_colours(len(robot_ids)), robot_ids):
        xy = np.asarray(robot_paths[robot_id])
        if xy.size == 0:
            continue
        axes.plot(xy[:, 0], xy[:, 1], '-', color=colour, linewidth=1.2, label=robot_id)
        axes.add_patch(Circle(tuple(xy[0]), radii_m[robot_id], facecolor='none',
                              edgecolor=colour, linewidth=1.0))
        axes.add_patch(Circle(tuple(xy[-1]), radii_m[robot_id], facecolor=colour, alpha=0.5,
                              edgecolor=colour))
        goal = goals_xy_m[robot_id]
        axes.plot([goal[0]], [goal[1]], 'x', color=colour, markersize=7, markeredgewidth=2)
    for obstacle_id, xy in (obstacle_paths or {}).items():
        xy = np.asarray(xy)
        axes.plot(xy[:, 0], xy[:, 1], '--', color='tab:red', linewidth=1.0, alpha=0.8)
        radius = (obstacle_radii_m or {}).get(obstacle_id, 0.3)
        axes.add_patch(Circle(tuple(xy[-1]), radius, facecolor='tab:red', alpha=0.35))
        axes.annotate(obstacle_id, tuple(xy[0]), fontsize=7, color='tab:red')
    if closest and closest.get('xy_m') and all(math.isfinite(v) for v in closest['xy_m']):
        x, y = closest['xy_m']
        axes.plot([x], [y], 'o', markersize=14, markerfacecolor='none', markeredgecolor='k',
                  markeredgewidth=2)
        axes.annotate(f"closest {closest['pair'][0]}-{closest['pair'][1]}: "
                      f"gap {closest['gap_m']:.3f} m at t={closest['time_s']:.1f} s",
                      (x, y), xytext=(8, 8), textcoords='offset points', fontsize=8)
    for event in collisions:
        axes.plot([event['xy_m'][0]], [event['xy_m'][1]], 'X', color='red', markersize=12)
    if len(robot_ids) <= 20:
        axes.legend(loc='upper right', fontsize=7, ncols=2 if len(robot_ids) > 8 else 1)
    axes.set_title(title or world.name)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path


def animate_run(path: str | Path, world: World, *, times_s: np.ndarray,
                robot_paths: Mapping[str, np.ndarray], radii_m: Mapping[str, float],
                obstacle_paths: Mapping[str, np.ndarray] | None = None,
                obstacle_radii_m: Mapping[str, float] | None = None, fps: int = 10,
                max_frames: int = 300) -> Path:
    """Write a GIF of the run; positions are sampled at ``times_s`` (same length as paths)."""
    figure, axes = _figure(world, dpi=60)
    frame_count = len(times_s)
    stride = max(1, int(math.ceil(frame_count / max_frames)))
    frames = list(range(0, frame_count, stride))
    robot_ids = list(robot_paths)
    robot_circles = []
    for colour, robot_id in zip(_colours(len(robot_ids)), robot_ids):
        circle = Circle(tuple(robot_paths[robot_id][0]), radii_m[robot_id], color=colour)
        axes.add_patch(circle)
        robot_circles.append(circle)
    obstacle_circles = []
    for obstacle_id, xy in (obstacle_paths or {}).items():
        circle = Circle(tuple(xy[0]), (obstacle_radii_m or {}).get(obstacle_id, 0.3),
                        color='tab:red', alpha=0.6)
        axes.add_patch(circle)
        obstacle_circles.append((circle, xy))
    label = axes.set_title('')

    def draw(frame: int):
        for circle, robot_id in zip(robot_circles, robot_ids):
            circle.center = tuple(robot_paths[robot_id][frame])
        for circle, xy in obstacle_circles:
            circle.center = tuple(xy[frame])
        label.set_text(f'{world.name}  t = {times_s[frame]:.1f} s')
        return robot_circles + [circle for circle, _ in obstacle_circles] + [label]

    animation = FuncAnimation(figure, draw, frames=frames, blit=False)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    animation.save(str(path), writer=PillowWriter(fps=fps))
    _LOG.info('wrote animation %s (%d frames)', path, len(frames))
    return path
