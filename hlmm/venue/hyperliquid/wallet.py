"""The signing key, loaded from an env var or a keystore file; never printed, logged or pickled.

An *agent* (API) wallet signs on behalf of another account: ``address`` is the signer, ``account_address`` the
master/sub-account/vault that is traded and queried. Info queries must use ``account_address``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import NoReturn

from coincurve import PrivateKey
from Crypto.Hash import keccak as _keccak

from hlmm.logsetup import register_secret

_KEY_RE = re.compile(r"^(?:0x)?[0-9a-fA-F]{64}$")
_ADDR_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")

DEFAULT_KEY_ENV = "HLMM_PRIVATE_KEY"
DEFAULT_KEYSTORE_PASSWORD_ENV = "HLMM_KEYSTORE_PASSWORD"


class WalletError(ValueError):
    """Missing or malformed key material. Messages never contain the key itself."""


def _keccak256(data: bytes) -> bytes:
    return _keccak.new(digest_bits=256, data=data).digest()


def normalize_address(address: str, what: str = "address") -> str:
    """``0x`` + 40 hex digits, returned lowercase. Raises WalletError otherwise."""
    if not isinstance(address, str) or not _ADDR_RE.match(address.strip()):
        raise WalletError(f"{what} must be '0x' followed by 40 hex digits, got {address!r}")
    return address.strip().lower()


def address_of(public_key_uncompressed: bytes) -> str:
    """Ethereum address (lowercase) of a 65-byte uncompressed secp256k1 public key."""
    return "0x" + _keccak256(public_key_uncompressed[1:])[-20:].hex()


class Wallet:
    """A secp256k1 signing key plus the account it acts for.

    The key lives in a private coincurve object; ``repr``/``str``/``format`` show only addresses.
    """

    __slots__ = ("_key", "account_address", "address", "is_agent")

    _key: PrivateKey
    address: str
    account_address: str
    is_agent: bool

    def __init__(self, key: PrivateKey, account_address: str | None = None) -> None:
        if not isinstance(key, PrivateKey):
            raise WalletError("Wallet needs a coincurve PrivateKey; use Wallet.from_key/from_env/from_keystore")
        self._key = key
        register_secret(key.secret)  # the log redactor masks this key's value in any form from now on
        self.address = address_of(key.public_key.format(compressed=False))
        self.account_address = (
            self.address if account_address is None else normalize_address(account_address, "account_address")
        )
        self.is_agent = self.account_address != self.address

    # ---- constructors ---------------------------------------------------
    @classmethod
    def from_key(cls, key_hex: str, account_address: str | None = None) -> Wallet:
        """From a 32-byte hex private key (with or without ``0x``)."""
        if not isinstance(key_hex, str):
            raise WalletError(f"private key must be a hex string, got {type(key_hex).__name__}")
        stripped = key_hex.strip()
        if not _KEY_RE.match(stripped):
            # Never echo the value: a near-miss key is still a secret.
            raise WalletError(f"private key must be 64 hex digits (optionally 0x-prefixed), got {len(stripped)} chars")
        raw = bytes.fromhex(stripped[2:] if stripped.startswith("0x") else stripped)
        try:
            key = PrivateKey(raw)
        except Exception:  # coincurve raises on 0 or >= curve order; its message is not useful
            raise WalletError("private key is not a valid secp256k1 key (zero or out of range)") from None
        return cls(key, account_address)

    @classmethod
    def from_env(cls, var: str = DEFAULT_KEY_ENV, account_address: str | None = None) -> Wallet:
        """From the private key in environment variable ``var``."""
        value = os.environ.get(var)
        if value is None or not value.strip():
            raise WalletError(
                f"environment variable {var} is not set or empty; export the signing key (hex) there, "
                "or use a keystore file"
            )
        try:
            return cls.from_key(value, account_address)
        except WalletError as e:
            raise WalletError(f"environment variable {var}: {e}") from None

    @classmethod
    def from_keystore(
        cls, path: str | os.PathLike[str], password: str | None = None, account_address: str | None = None
    ) -> Wallet:
        """From an encrypted Ethereum keystore (V3 JSON). ``password`` defaults to $HLMM_KEYSTORE_PASSWORD."""
        from eth_account import Account  # lazy: only the keystore path needs scrypt/pbkdf2

        p = Path(path)
        if password is None:
            password = os.environ.get(DEFAULT_KEYSTORE_PASSWORD_ENV)
            if password is None:
                raise WalletError(
                    f"no keystore password given and {DEFAULT_KEYSTORE_PASSWORD_ENV} is not set (keystore {p})"
                )
        try:
            blob = json.loads(p.read_text())
        except FileNotFoundError:
            raise WalletError(f"keystore file not found: {p}") from None
        except (OSError, ValueError) as e:
            raise WalletError(f"cannot read keystore {p}: {e}") from None
        try:
            raw = Account.decrypt(blob, password)
        except ValueError as e:  # eth-keyfile: "MAC mismatch" on a wrong password
            raise WalletError(f"cannot decrypt keystore {p} (wrong password?): {e}") from None
        except Exception as e:
            raise WalletError(f"keystore {p} is malformed: {type(e).__name__}") from None
        try:
            key = PrivateKey(bytes(raw))
        except Exception:
            raise WalletError(f"keystore {p} holds an invalid secp256k1 key") from None
        return cls(key, account_address)

    @classmethod
    def load(
        cls,
        keystore_path: str | os.PathLike[str] | None = None,
        account_address: str | None = None,
        env_var: str = DEFAULT_KEY_ENV,
    ) -> Wallet:
        """The configured key: the keystore when ``keystore_path`` is set (config ``account.keystore_path``),
        otherwise ``$env_var``. ``account_address`` is config ``account.address`` (None: the signer itself)."""
        if keystore_path is not None:
            return cls.from_keystore(keystore_path, None, account_address)
        return cls.from_env(env_var, account_address)

    # ---- signing ----------------------------------------------------------
    def sign_digest(self, digest: bytes) -> tuple[int, int, int]:
        """Sign a 32-byte digest (no further hashing). Returns (r, s, v) with v = 27 + recovery id, low-s."""
        if len(digest) != 32:
            raise WalletError(f"digest must be 32 bytes, got {len(digest)}")
        sig = self._key.sign_recoverable(digest, hasher=None)
        return int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big"), 27 + sig[64]

    # ---- safety: the key never leaves through printing or pickling ----------
    def __repr__(self) -> str:
        if self.is_agent:
            return f"Wallet(address={self.address}, account_address={self.account_address}, agent)"
        return f"Wallet(address={self.address})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return format(repr(self), spec)

    def __reduce__(self) -> NoReturn:
        raise TypeError("Wallet holds a private key and cannot be pickled or copied")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Wallet):
            return NotImplemented
        return self.address == other.address and self.account_address == other.account_address

    def __hash__(self) -> int:
        return hash((self.address, self.account_address))
