"""Quality-of-service profiles for every topic of the bridge, chosen per topic.

A publisher and a subscription connect only when their policies are compatible: a reliable
subscription does not receive from a best-effort publisher, and a transient-local subscription
does not receive from a volatile publisher. The choices below follow that rule so that RViz
(reliable, volatile by default) and Nav2-style nodes connect without tuning.

=====================  ===========  ===============  =======  ===================================
topic                  reliability  durability       depth    why
=====================  ===========  ===============  =======  ===================================
``/map``               reliable     transient local  1        latched: late subscribers get it
``plan``               reliable     transient local  1        the current committed plan, latched
``markers``            reliable     transient local  1        RViz opened later still draws them
``/moving_obstacles``  reliable     volatile         10       refreshed at a fixed rate
``goal_pose``          reliable     volatile         10       RViz "2D Goal Pose" publishes so
``odom``               best effort  volatile         10       accepts reliable and best-effort
``cmd_vel``            reliable     volatile         10       a lost command would stall a robot
``/diagnostics``       reliable     volatile         10       as diagnostic_updater publishes
``diagnostics`` (ns)   reliable     volatile         10       per-robot status to the fleet node
``/tf``                reliable     volatile         100      as tf2 broadcasters publish
``/clock``             reliable     volatile         10       rclpy's time source subscribes
=====================  ===========  ===============  =======  ===================================
"""

from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

__all__ = [
    'CLOCK_QOS',
    'CMD_VEL_QOS',
    'DIAGNOSTICS_QOS',
    'GOAL_QOS',
    'MAP_QOS',
    'MARKERS_QOS',
    'MOVING_OBSTACLES_QOS',
    'ODOM_PUBLISHER_QOS',
    'ODOM_QOS',
    'PLAN_QOS',
    'ROBOT_STATUS_QOS',
    'TF_QOS',
    'latched',
]


def latched(depth: int = 1) -> QoSProfile:
    """Return a reliable, transient-local profile: the last ``depth`` messages are replayed
    to every subscription that joins later."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL)


def _reliable(depth: int) -> QoSProfile:
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)


MAP_QOS = latched(1)
PLAN_QOS = latched(1)
MARKERS_QOS = latched(1)
MOVING_OBSTACLES_QOS = _reliable(10)
GOAL_QOS = _reliable(10)
# Best effort on the subscription side accepts both reliable and best-effort publishers.
ODOM_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                      reliability=ReliabilityPolicy.BEST_EFFORT,
                      durability=DurabilityPolicy.VOLATILE)
CMD_VEL_QOS = _reliable(10)
# The simulator publishes odometry reliably; agent subscriptions are best effort (above).
ODOM_PUBLISHER_QOS = _reliable(10)
DIAGNOSTICS_QOS = _reliable(10)
ROBOT_STATUS_QOS = _reliable(10)
TF_QOS = _reliable(100)
CLOCK_QOS = _reliable(10)
