"""ROS 2 bridge: agent and fleet nodes, message conversions, the fleet launch logic and the
simulator on ROS.

The modules import rclpy and the message packages, so import them only where ROS 2 (the
``ros-rclpy`` wheels or a ROS 2 installation) is available; the rest of mapl_robotics works
without it. See docs/ros2.md.
"""
