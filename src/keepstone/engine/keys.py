"""The master key of an encrypted repository and its password-wrapped ``keys/`` objects."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from argon2.exceptions import HashingError
from argon2.low_level import ARGON2_VERSION, Type, hash_secret_raw

from keepstone.engine import wire
from keepstone.engine.errors import RepositoryCorrupt

_SALT_SIZE = 16
_NONCE_SIZE = 12
_KEY_SIZE = 32


@dataclass(frozen=True)
class KdfCost:
    """Argon2id cost. The default is RFC 9106's "low memory" choice; tests pass cheaper ones."""

    time_cost: int = 3
    memory_cost: int = 65536  # KiB
    parallelism: int = 4


@dataclass(frozen=True)
class MasterKey:
    data_key: bytes
    id_key: bytes
    chunker_seed: int

    @classmethod
    def generate(cls, random_bytes: Callable[[int], bytes]) -> MasterKey:
        # pyfastcdc takes a seed below 2**63 (it shifts it left into 64 bits); 0 means "no seed".
        seed = (int.from_bytes(random_bytes(8), "little") >> 1) | 1
        return cls(random_bytes(_KEY_SIZE), random_bytes(_KEY_SIZE), seed)


def make_key_file(
    master: MasterKey,
    repository_id: str,
    password: str,
    cost: KdfCost,
    random_bytes: Callable[[int], bytes],
    now: datetime,
) -> bytes:
    salt = random_bytes(_SALT_SIZE)
    kdf: dict[str, Any] = {
        "algorithm": "argon2id",
        "version": ARGON2_VERSION,
        "time_cost": cost.time_cost,
        "memory_cost": cost.memory_cost,
        "parallelism": cost.parallelism,
        "salt": wire.b64(salt),
    }
    secret = wire.dumps(
        {
            "version": wire.FORMAT_VERSION,
            "repository": repository_id,
            "data_key": wire.b64(master.data_key),
            "id_key": wire.b64(master.id_key),
            "chunker_seed": master.chunker_seed,
        }
    )
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # as in engine.codec

    nonce = random_bytes(_NONCE_SIZE)
    sealed = nonce + AESGCM(_derive(password, kdf)).encrypt(nonce, secret, None)
    document = {
        "version": wire.FORMAT_VERSION,
        "created": wire.format_time(now),
        "kdf": kdf,
        "data": wire.b64(sealed),
    }
    return wire.dumps(document)


def open_key_file(data: bytes, name: str, password: str, repository_id: str) -> MasterKey | None:
    """The master key if ``password`` unwraps this key file, else None."""
    from cryptography.exceptions import InvalidTag  # as in engine.codec
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    document = wire.load_object(data, name)
    sealed = wire.unb64(document.get("data"), name)
    try:
        kek = _derive(password, document.get("kdf"))
        secret = AESGCM(kek).decrypt(sealed[:_NONCE_SIZE], sealed[_NONCE_SIZE:], None)
    except InvalidTag:
        return None
    except (TypeError, ValueError, KeyError, HashingError) as e:
        raise RepositoryCorrupt(f"{name} has bad key parameters: {e}") from None
    return _parse_secret(secret, name, repository_id)


def _derive(password: str, kdf: object) -> bytes:
    if not isinstance(kdf, dict) or kdf.get("algorithm") != "argon2id":
        raise ValueError("unknown key derivation")
    return hash_secret_raw(
        secret=password.encode(),
        salt=wire.unb64(kdf["salt"], "key salt"),
        time_cost=int(kdf["time_cost"]),
        memory_cost=int(kdf["memory_cost"]),
        parallelism=int(kdf["parallelism"]),
        hash_len=_KEY_SIZE,
        type=Type.ID,
        version=int(kdf["version"]),
    )


def _parse_secret(secret: bytes, name: str, repository_id: str) -> MasterKey:
    document = wire.load_object(secret, name)
    if document.get("repository") != repository_id:
        raise RepositoryCorrupt(f"{name} belongs to another repository")
    master = MasterKey(
        data_key=wire.unb64(document.get("data_key"), name),
        id_key=wire.unb64(document.get("id_key"), name),
        chunker_seed=document.get("chunker_seed", 0),
    )
    valid_keys = len(master.data_key) == len(master.id_key) == _KEY_SIZE
    if not valid_keys or not isinstance(master.chunker_seed, int):
        raise RepositoryCorrupt(f"{name} holds a malformed master key")
    return master
