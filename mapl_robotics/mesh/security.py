"""CurveZMQ keys, the fleet keyring and the ZAP authenticator that enforces it.

Every robot (and ledger node) has a Curve25519 key pair. The fleet lists the allowed public
keys per node id. A node's inbound socket is a CURVE server whose ZAP handler accepts a
connection only if the client's public key is in the keyring, and stamps each message from it
with the owning node id as ZeroMQ ``User-Id`` metadata. The node then rejects any packet whose
claimed sender differs from that ``User-Id``, so one robot cannot speak for another.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Mapping

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils import z85

from mapl_robotics.errors import MeshConfigError, MessageFormatError
from mapl_robotics.mesh.audit import AUTH_REJECTED, AuditLog
from mapl_robotics.mesh.schema import validate_node_id

__all__ = [
    'KeyPair',
    'FleetKeyring',
    'FleetAuthenticator',
    'generate_keypair',
    'write_keypair',
    'load_keypair',
    'load_public_key',
    'ZAP_DOMAIN',
]

_log = logging.getLogger(__name__)

ZAP_DOMAIN = 'mapl-mesh'
_Z85_KEY_LENGTH = 40
_Z85_ALPHABET = frozenset('0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'
                          '.-:+=^!/*?&<>()[]{}@%$#')


def _check_z85_key(key: str | bytes, what: str) -> bytes:
    key_bytes = key.encode('ascii') if isinstance(key, str) else bytes(key)
    if len(key_bytes) != _Z85_KEY_LENGTH:
        raise MeshConfigError(f'{what} must be a {_Z85_KEY_LENGTH}-character Z85 Curve key, '
                              f'got {len(key_bytes)} characters; generate keys with '
                              '`mapl keys generate`')
    try:
        z85.decode(key_bytes)
    except (ValueError, KeyError, IndexError) as error:
        # pyzmq's decoder raises KeyError with only the byte value, for example 92 for '\\'.
        bad = sorted({chr(byte) for byte in key_bytes if chr(byte) not in _Z85_ALPHABET})
        detail = f'characters {bad} are not in the Z85 alphabet' if bad else str(error)
        raise MeshConfigError(f'{what} is not valid Z85 ({detail}); generate keys with '
                              '`mapl keys generate`') from error
    return key_bytes


@dataclasses.dataclass(frozen=True)
class KeyPair:
    """A Curve25519 key pair, both halves Z85-encoded (40 ASCII bytes each)."""

    public_key: bytes
    secret_key: bytes = dataclasses.field(repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, 'public_key', _check_z85_key(self.public_key, 'public key'))
        object.__setattr__(self, 'secret_key', _check_z85_key(self.secret_key, 'secret key'))


def generate_keypair() -> KeyPair:
    """Return a fresh Curve25519 key pair from libzmq."""
    public_key, secret_key = zmq.curve_keypair()
    return KeyPair(public_key=public_key, secret_key=secret_key)


def write_keypair(directory: str | Path, name: str) -> tuple[Path, Path]:
    """Create ``NAME.key`` (public) and ``NAME.key_secret`` in ``directory``.

    Uses ``zmq.auth.create_certificates``, whose files the zmq.auth loaders and other ZeroMQ
    tools read. The secret file is made readable by its owner only. ``name`` must be a valid
    node id, so the files always land inside ``directory``.
    """
    validate_node_id(name)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    public_path, secret_path = zmq.auth.create_certificates(str(directory), name)
    Path(secret_path).chmod(0o600)
    return Path(public_path), Path(secret_path)


def _regenerate_hint(path: Path) -> str:
    """Return the fixes for an unreadable key file: restore it, or make and share a new pair."""
    return (f'Restore the file from a copy, or make a new pair with `mapl keys generate --out '
            f'{path.parent} --nodes {path.stem} --force` and copy the new {path.stem}.key to '
            'every node')


def load_keypair(secret_path: str | Path) -> KeyPair:
    """Load a key pair from a ``.key_secret`` certificate file."""
    path = Path(secret_path)
    if not path.is_file():
        raise MeshConfigError(f'secret key file {path} not found; create it with '
                              '`mapl keys generate`')
    try:
        public_key, secret_key = zmq.auth.load_certificate(str(path))
    except (ValueError, OSError) as error:
        raise MeshConfigError(f'cannot read key pair from {path}: {error}. '
                              f'{_regenerate_hint(path)}') from error
    if secret_key is None:
        raise MeshConfigError(f'{path} contains no secret key; pass the .key_secret file')
    return KeyPair(public_key=public_key, secret_key=secret_key)


def load_public_key(path: str | Path) -> bytes:
    """Load the Z85 public key from a ``.key`` or ``.key_secret`` certificate file."""
    path = Path(path)
    if not path.is_file():
        raise MeshConfigError(f'public key file {path} not found')
    try:
        public_key, _ = zmq.auth.load_certificate(str(path))
    except (ValueError, OSError) as error:
        raise MeshConfigError(f'cannot read public key from {path}: {error}. '
                              f'{_regenerate_hint(path)}') from error
    return _check_z85_key(public_key, f'public key in {path}')


class FleetKeyring:
    """The fleet's allowed public keys, by node id, with the reverse lookup."""

    def __init__(self, public_keys: Mapping[str, str | bytes]) -> None:
        self._by_node: dict[str, bytes] = {}
        self._by_key: dict[bytes, str] = {}
        for node_id, key in public_keys.items():
            validate_node_id(node_id)
            key_bytes = _check_z85_key(key, f'public key of {node_id!r}')
            if key_bytes in self._by_key:
                raise MeshConfigError(f'nodes {self._by_key[key_bytes]!r} and {node_id!r} '
                                      'share a public key; every node needs its own key pair')
            self._by_node[node_id] = key_bytes
            self._by_key[key_bytes] = node_id

    @classmethod
    def from_directory(cls, directory: str | Path) -> 'FleetKeyring':
        """Build a keyring from every ``NAME.key`` file in ``directory`` (node id = NAME)."""
        directory = Path(directory)
        if not directory.is_dir():
            raise MeshConfigError(f'key directory {directory} not found')
        paths = sorted(directory.glob('*.key'))
        for path in paths:
            try:
                validate_node_id(path.stem)
            except MessageFormatError as error:
                raise MeshConfigError(f'{error}, in the name of key file {path}. Rename the '
                                      f'file or remove it from {directory}') from None
        keys = {path.stem: load_public_key(path) for path in paths}
        if not keys:
            raise MeshConfigError(f'no *.key public key files in {directory}')
        return cls(keys)

    def public_key(self, node_id: str) -> bytes:
        try:
            return self._by_node[node_id]
        except KeyError:
            raise MeshConfigError(f'no public key for node {node_id!r} in the fleet '
                                  'keyring; add it to the fleet key list') from None

    def node_for_key(self, public_key_z85: bytes) -> str | None:
        return self._by_key.get(bytes(public_key_z85))

    def __contains__(self, node_id: str) -> bool:
        return node_id in self._by_node

    def node_ids(self) -> list[str]:
        return sorted(self._by_node)


class _KeyringCredentials:
    """pyzmq credentials provider: accept a CURVE client only if its key is in the keyring."""

    def __init__(self, keyring: FleetKeyring, audit: AuditLog | None) -> None:
        self._keyring = keyring
        self._audit = audit

    def callback(self, domain: str, client_key_z85: bytes) -> bool:
        if self._keyring.node_for_key(client_key_z85) is not None:
            return True
        if self._audit is not None:
            self._audit.record(AUTH_REJECTED, reason='unknown public key',
                               public_key=bytes(client_key_z85).decode('ascii', 'replace'))
        return False


class FleetAuthenticator(ThreadAuthenticator):
    """ZAP handler thread that admits only fleet keys and maps each key to its node id.

    The node id becomes the ``User-Id`` metadata on every frame received over that
    connection, readable with ``zmq.Frame.get('User-Id')``.
    """

    def __init__(self, context: zmq.Context, keyring: FleetKeyring, *,
                 audit: AuditLog | None = None) -> None:
        super().__init__(context, log=logging.getLogger(__name__ + '.zap'))
        self._keyring = keyring
        self._credentials = _KeyringCredentials(keyring, audit)

    def start(self) -> None:
        super().start()
        self.configure_curve_callback(domain=ZAP_DOMAIN, credentials_provider=self._credentials)

    def curve_user_id(self, client_public_key: bytes) -> str:
        node_id = self._keyring.node_for_key(z85.encode(client_public_key))
        # Only called after the callback accepted the key, so node_id is known.
        return node_id if node_id is not None else ''
