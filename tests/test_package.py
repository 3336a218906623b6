"""Packaging: the wheel, a plain pip install, a colcon build, and package.xml."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import xml.etree.ElementTree as ElementTree
import zipfile
from pathlib import Path

import pytest

import mapl_robotics
from tests.conftest import REPO_ROOT

DATA_FOLDERS = ('maps', 'sim', 'launch')
SOURCE_ITEMS = ('mapl_robotics', 'maps', 'sim', 'launch', 'resource', 'package.xml', 'setup.py',
                'setup.cfg')
SHARE = 'share/mapl_robotics'


def repo_data_files() -> list[str]:
    """Return every data file that must install under share/mapl_robotics/."""
    found = []
    for folder in DATA_FOLDERS:
        for path in (REPO_ROOT / folder).rglob('*'):
            if path.is_file() and '__pycache__' not in path.parts:
                found.append(path.relative_to(REPO_ROOT).as_posix())
    return sorted(found)


@pytest.fixture(scope='module')
def source_copy(tmp_path_factory) -> Path:
    """A copy of the package sources, so that builds leave the working tree untouched."""
    target = tmp_path_factory.mktemp('source') / 'mapl_robotics'
    target.mkdir()
    ignore = shutil.ignore_patterns('__pycache__', '*.pyc', '*.egg-info')
    for item in SOURCE_ITEMS:
        source = REPO_ROOT / item
        if source.is_dir():
            shutil.copytree(source, target / item, ignore=ignore)
        else:
            shutil.copy2(source, target / item)
    return target


@pytest.fixture(scope='module')
def wheel_path(source_copy, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp('wheel')
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', str(source_copy), '--no-deps',
                    '--wheel-dir', str(out), '--quiet'], check=True, timeout=300,
                   cwd=out)
    wheels = list(out.glob('mapl_robotics-*.whl'))
    assert len(wheels) == 1
    return wheels[0]


def test_wheel_has_data_under_share(wheel_path):
    with zipfile.ZipFile(wheel_path) as archive:
        names = set(archive.namelist())
    data_prefix = f'mapl_robotics-{mapl_robotics.__version__}.data/data/'
    expected = repo_data_files()
    assert 'maps/ros/warehouse.yaml' in expected
    missing = [name for name in expected if data_prefix + f'{SHARE}/{name}' not in names]
    assert missing == []
    assert data_prefix + f'{SHARE}/package.xml' in names
    assert data_prefix + 'share/ament_index/resource_index/packages/mapl_robotics' in names


def test_wheel_has_package_and_console_script(wheel_path):
    with zipfile.ZipFile(wheel_path) as archive:
        names = set(archive.namelist())
        dist_info = f'mapl_robotics-{mapl_robotics.__version__}.dist-info'
        entry_points = archive.read(f'{dist_info}/entry_points.txt').decode()
    assert 'mapl_robotics/spec/__init__.py' in names
    assert 'mapl_robotics/py.typed' in names
    assert not any(name.startswith('tests/') for name in names)
    assert 'mapl = mapl_robotics.cli:main' in entry_points


def test_wheel_installs_into_fresh_venv(wheel_path, tmp_path):
    """A non-editable install finds its data under <venv>/share/mapl_robotics."""
    venv_dir = tmp_path / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(venv_dir)], check=True,
                   timeout=120)
    python = venv_dir / 'bin' / 'python'
    site_packages = Path(subprocess.run(
        [str(python), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
        check=True, capture_output=True, text=True, timeout=60).stdout.strip())
    # The dependencies come from the test interpreter's environment, after the new venv's own
    # site-packages, so that the freshly installed copy of mapl_robotics is the one imported.
    (site_packages / 'test_dependencies.pth').write_text(sysconfig.get_paths()['purelib'] + '\n')

    # --ignore-installed: the .pth file makes the test environment's copy visible to pip,
    # which must neither skip the install because of it nor uninstall it.
    subprocess.run([sys.executable, '-m', 'pip', '--python', str(python), 'install',
                    '--no-deps', '--ignore-installed', '--quiet', str(wheel_path)], check=True,
                   timeout=300)

    probe = ('import mapl_robotics, mapl_robotics.resources as r; '
             'print(mapl_robotics.__file__); print(r.share_dir()); '
             "print(r.bundled_path('maps/ros/warehouse.yaml'))")
    result = subprocess.run([str(python), '-c', probe], cwd=tmp_path, check=False,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    module_file, share, warehouse = result.stdout.split()
    assert Path(module_file).is_relative_to(site_packages)
    assert Path(share) == venv_dir / 'share' / 'mapl_robotics'
    assert Path(warehouse).is_file()
    for folder in DATA_FOLDERS:
        assert (Path(share) / folder).is_dir()
    help_text = subprocess.run([str(venv_dir / 'bin' / 'mapl'), '--help'], cwd=tmp_path,
                               check=True, capture_output=True, text=True, timeout=60).stdout
    assert 'plan' in help_text


def test_prefix_install_finds_its_data(wheel_path, tmp_path):
    """An install outside sys.prefix (``--prefix``, ``--user``) finds ``<prefix>/share``."""
    prefix = tmp_path / 'prefix'
    subprocess.run([sys.executable, '-m', 'pip', 'install', '--no-deps', '--ignore-installed',
                    '--quiet', '--prefix', str(prefix), str(wheel_path)], check=True,
                   timeout=300)
    site_packages = Path(sysconfig.get_path('purelib', vars={'base': str(prefix)}))
    probe = ('import mapl_robotics, mapl_robotics.resources as r; '
             'print(mapl_robotics.__file__); print(r.share_dir())')
    result = subprocess.run([sys.executable, '-c', probe], cwd=tmp_path, check=False,
                            capture_output=True, text=True, timeout=60,
                            env=dict(os.environ, PYTHONPATH=str(site_packages)))
    assert result.returncode == 0, result.stderr
    module_file, share = result.stdout.split()
    assert Path(module_file).is_relative_to(site_packages)
    assert Path(share) == prefix / 'share' / 'mapl_robotics'


def test_colcon_build_installs_ament_layout(source_copy, tmp_path):
    colcon = Path(sys.executable).with_name('colcon')
    assert colcon.is_file(), 'colcon is part of the test extra: pip install ".[test]"'
    workspace = tmp_path / 'ws'
    (workspace / 'src').mkdir(parents=True)
    os.symlink(source_copy, workspace / 'src' / 'mapl_robotics')
    environment = dict(os.environ, PATH=f'{colcon.parent}{os.pathsep}{os.environ["PATH"]}')
    result = subprocess.run([str(colcon), 'build', '--event-handlers', 'console_direct-'],
                            cwd=workspace, capture_output=True, text=True, timeout=300,
                            env=environment)
    assert result.returncode == 0, result.stdout + result.stderr
    prefix = workspace / 'install' / 'mapl_robotics'
    share = prefix / 'share' / 'mapl_robotics'
    missing = [name for name in repo_data_files() if not (share / name).is_file()]
    assert missing == []
    assert (share / 'package.xml').is_file()
    assert (prefix / 'share' / 'ament_index' / 'resource_index' / 'packages'
            / 'mapl_robotics').is_file()
    # ros2 run looks for executables in lib/<package>.
    assert (prefix / 'lib' / 'mapl_robotics' / 'mapl').is_file()


def test_package_xml_is_ament_python_format_3():
    root = ElementTree.parse(REPO_ROOT / 'package.xml').getroot()
    assert root.tag == 'package'
    assert root.get('format') == '3'
    assert root.findtext('name') == 'mapl_robotics'
    assert root.findtext('version') == mapl_robotics.__version__
    assert root.findtext('export/build_type') == 'ament_python'
    exec_depends = {element.text for element in root.findall('exec_depend')}
    for dependency in ('rclpy', 'python3-numpy', 'python3-scipy', 'python3-shapely',
                       'python3-zmq', 'python3-yaml', 'python3-pydantic', 'python3-click',
                       'python3-matplotlib', 'python3-msgpack', 'python3-cryptography'):
        assert dependency in exec_depends
    assert any('pysyncobj' in name for name in exec_depends)
    assert any('pybullet' in name for name in exec_depends)


def test_resource_marker_present():
    marker = REPO_ROOT / 'resource' / 'mapl_robotics'
    assert marker.is_file()


def test_setup_cfg_puts_scripts_where_ros2_run_looks():
    text = (REPO_ROOT / 'setup.cfg').read_text()
    assert 'install_scripts=$base/lib/mapl_robotics' in text.replace(' ', '')
    assert 'script_dir=$base/lib/mapl_robotics' in text.replace(' ', '')
