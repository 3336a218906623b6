"""Build script for the mapl_robotics ament_python package (also a plain pip package)."""

import glob
import os

from setuptools import find_packages, setup

PACKAGE_NAME = 'mapl_robotics'
# setuptools reads data_files relative to this folder, whatever the current directory is.
HERE = os.path.dirname(os.path.abspath(__file__))


def data_tree(folder):
    """Return data_files entries that install ``folder`` under share/mapl_robotics/."""
    entries = {}
    for path in sorted(glob.glob(os.path.join(folder, '**', '*'), root_dir=HERE,
                                 recursive=True)):
        if '__pycache__' in path or path.endswith('.pyc'):
            continue
        if os.path.isfile(os.path.join(HERE, path)):
            target = os.path.join('share', PACKAGE_NAME, os.path.dirname(path))
            entries.setdefault(target, []).append(path)
    return sorted(entries.items())


ROS_REQUIREMENTS = [
    'ros-rclpy',
    'ros-rmw-fastrtps-cpp',
    'ros-fastdds',
    'ros-std-msgs',
    'ros-geometry-msgs',
    'ros-nav-msgs',
    'ros-sensor-msgs',
    'ros-visualization-msgs',
    'ros-diagnostic-msgs',
]

setup(
    name=PACKAGE_NAME,
    version='0.1.0',
    packages=find_packages(exclude=['tests', 'tests.*', 'bench']),
    package_data={PACKAGE_NAME: ['py.typed']},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE_NAME]),
        ('share/' + PACKAGE_NAME, ['package.xml']),
        *data_tree('launch'),
        *data_tree('maps'),
        *data_tree('sim'),
    ],
    python_requires='>=3.10',
    install_requires=[
        'setuptools',
        'numpy>=1.24',
        'scipy>=1.10',
        'numba>=0.60',
        'shapely>=2.0',
        'pyzmq>=25',
        'pysyncobj>=0.3.12',
        'pybullet>=3.2',
        'pydantic>=2.5',
        'pyyaml>=6',
        'msgpack>=1.0',
        'matplotlib>=3.7',
        'pillow>=9',
        'tqdm>=4.60',
        'click>=8.1',
        'cryptography>=41',
    ],
    extras_require={
        'ros': ROS_REQUIREMENTS,
        'test': [
            'pytest>=7',
            'pytest-timeout>=2.1',
            'hypothesis>=6.80',
            'ompl>=2.0',
            'pymapf>=0.9',
            *ROS_REQUIREMENTS,
            'colcon-core',
            'colcon-ros',
            'colcon-python-setup-py',
            'ros-ament-package',
        ],
    },
    zip_safe=False,
    maintainer='mapl_robotics developers',
    maintainer_email='dev@mapl-robotics.invalid',
    description='Multi-robot coordination: RRT planning, Raft-committed plans, ZeroMQ mesh, '
                'PyBullet fleet simulation and a ROS 2 bridge.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'mapl = mapl_robotics.cli:main',
            'agent = mapl_robotics.ros.entry_points:agent_main',
            'fleet = mapl_robotics.ros.entry_points:fleet_main',
            'sim_bridge = mapl_robotics.ros.entry_points:sim_bridge_main',
        ],
    },
)
