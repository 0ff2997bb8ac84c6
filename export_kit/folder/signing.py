"""Ed25519 signatures over ``manifest.json``: how a folder proves it was built by someone the user trusts.

The manifest pins every file by sha256, so one signature over its exact bytes covers the whole folder. Every
build signs with this machine's key (created on first use under ``$EXPORTKIT_HOME``, default
``~/.config/exportkit``, private part readable by its owner only); a folder built elsewhere is trusted when its
signer's public key is given with ``--trust-key``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from export_kit.errors import UntrustedCodeError, UsageError
from export_kit.folder.manifest import MANIFEST_NAME, Manifest
from export_kit.safeio.atomic import atomic_path, write_json
from export_kit.safeio.limits import JSON_MAX_BYTES, read_regular
from export_kit.safeio.trust import Trust

SIGNATURE_NAME = "manifest.sig"
PRIVATE_NAME = "signing_key.pem"
PUBLIC_NAME = "signing_key.pub"
PUBLIC_PREFIX = "exportkit-ed25519"
MAX_SIGNATURE_BYTES = 4096


def key_home() -> Path:
    """Where this machine's key lives: ``$EXPORTKIT_HOME``, which must be absolute (a relative one would move with
    the working directory, into a copied folder for one), else ``~/.config/exportkit``."""
    home = os.environ.get("EXPORTKIT_HOME")
    if home and not Path(home).is_absolute():
        raise UsageError(f"EXPORTKIT_HOME must be an absolute path, got {home!r}")
    return Path(home) if home else Path.home() / ".config" / "exportkit"


def _local_private_key():
    """This machine's signing key, made on first use (0600)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = key_home() / PRIVATE_NAME
    if path.is_file():
        return serialization.load_pem_private_key(path.read_bytes(), password=None)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    with atomic_path(path, mode=0o600) as tmp:
        tmp.write_bytes(pem)
    with atomic_path(key_home() / PUBLIC_NAME) as tmp:
        tmp.write_text(f"{PUBLIC_PREFIX} {_public_hex(key.public_key())}\n", encoding="ascii")
    return key


def _public_hex(public_key) -> str:
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def sign_file(path: Path, signature: Path) -> None:
    """Sign the exact bytes of ``path`` with this machine's key into ``signature``."""
    key = _local_private_key()
    write_json(signature, {"algorithm": "ed25519", "public_key": _public_hex(key.public_key()),
                           "signature": key.sign(Path(path).read_bytes()).hex()})


def sign_folder(folder: Path) -> None:
    """Sign ``folder/manifest.json`` with this machine's key into ``manifest.sig``."""
    sign_file(Path(folder) / MANIFEST_NAME, Path(folder) / SIGNATURE_NAME)


def read_public_key(path: Path) -> str:
    """A ``--trust-key`` file: the one line ``exportkit-ed25519 <hex>`` that a build machine's key_home holds."""
    try:
        words = read_regular(Path(path), MAX_SIGNATURE_BYTES, UsageError, "--trust-key").decode("ascii").split()
    except UnicodeDecodeError:
        raise UsageError(f"--trust-key {path} is not an exportkit public key (not ASCII)") from None
    if len(words) != 2 or words[0] != PUBLIC_PREFIX or len(words[1]) != 64:
        raise UsageError(f"--trust-key {path} is not an exportkit public key (one line: {PUBLIC_PREFIX} <64 hex>)")
    try:
        bytes.fromhex(words[1])
    except ValueError:
        raise UsageError(f"--trust-key {path} is not an exportkit public key (bad hex)") from None
    return words[1].lower()


def signer_of(path: Path, signature: Path, trusted: set[str], what: str) -> tuple[str | None, str | None]:
    """(the trusted public key that signed ``path``'s exact bytes, None) or (None, why ``what`` is not signed
    so)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if signature.is_symlink() or not signature.exists():
        return None, f"{what} is not signed"
    try:
        sig = json.loads(read_regular(signature, MAX_SIGNATURE_BYTES, UsageError).decode("ascii"))
        public, signed = bytes.fromhex(sig["public_key"]), bytes.fromhex(sig["signature"])
    except UsageError as exc:
        return None, str(exc)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None, f"{signature.name} is malformed"
    if public.hex() not in trusted:
        return None, f"{what} is signed by a key that is not trusted here"
    if path.is_symlink():
        return None, f"{path.name} is a symbolic link"
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signed, read_regular(path, JSON_MAX_BYTES, UsageError))
    except UsageError as exc:
        return None, str(exc)
    except (InvalidSignature, ValueError):
        return None, f"the signature does not match {path.name}: it changed after signing"
    return public.hex(), None


def _signature_problem(folder: Path, trusted: set[str]) -> str | None:
    """Why the folder's signature does not make it trusted, or None when it does."""
    return signer_of(Path(folder) / MANIFEST_NAME, Path(folder) / SIGNATURE_NAME, trusted, "the folder")[1]


def _local_public_hex(folder: Path | None = None) -> set[str]:
    """This machine's public key, if it has signed anything yet (verify never creates a key); none when the key
    home lies inside ``folder``: a folder would then vouch for itself with a key it carries."""
    home = key_home()
    if folder is not None and home.resolve().is_relative_to(Path(folder).resolve()):
        return set()
    path = home / PUBLIC_NAME
    return {read_public_key(path)} if path.is_file() else set()


def trusted_keys(trust_keys: Sequence[Path] = (), folder: Path | None = None) -> set[str]:
    """The public keys (hex) whose signatures count for ``folder``: this machine's (unless it is kept inside that
    folder) and the ``--trust-key`` files'."""
    return {*_local_public_hex(folder), *(read_public_key(p) for p in trust_keys)}


def require_trusted_signature(folder: Path, trust_keys: Sequence[Path], action: str) -> None:
    """Refuse ``action`` (a command that would sign the folder again) unless its manifest, as it is now, carries
    a valid signature by a trusted key. Signing an unsigned or altered folder with the local key would make
    everything in it trusted from then on, code included; ``--trust-code`` does not count, since it trusts one
    run, not the folder."""
    problem = _signature_problem(folder, trusted_keys(trust_keys, folder))
    if problem:
        raise UntrustedCodeError(f"{action} signs the manifest again, so it needs a folder signed by a trusted key, "
                                 f"and {problem}; rebuild the folder here, or give its signer with --trust-key")


def folder_trust(folder: Path, manifest: Manifest, *, trust_keys: Sequence[Path] = (), trust_code: bool = False,
                 factories: Sequence[str] = ()) -> Trust:
    """The trust a folder earns: every file its trusted signature pins, or all code with ``trust_code``."""
    trusted = trusted_keys(trust_keys, folder)
    if trust_code:
        return Trust(tuple(factories), all_code=True, why_not="")
    problem = _signature_problem(folder, trusted)
    if problem:
        return Trust(tuple(factories), why_not=problem)
    return Trust(tuple(factories), signed_digests=frozenset(a.sha256 for a in manifest.artifacts), why_not="")
