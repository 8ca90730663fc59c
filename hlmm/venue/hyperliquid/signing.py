"""Hyperliquid action signing, byte-identical to the official SDK (hyperliquid-python-sdk ``utils/signing.py``).

L1 actions (orders, cancels, ...): ``connectionId = keccak(msgpack(action) || nonce || vault || expiry)``, then an
EIP-712 signature of ``Agent{source: "a"|"b", connectionId}`` under the fixed "Exchange" domain. The domain
separator, the Agent type hash and the two source hashes are constants, so a signature costs three keccaks and
one libsecp256k1 call (coincurve) instead of a full generic EIP-712 encoding.

User-signed actions (approveAgent, usdSend, ...) are EIP-712 structs of flat fields under the
"HyperliquidSignTransaction" domain; a small encoder for atomic field types covers all of them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import msgpack
from coincurve import PublicKey
from Crypto.Hash import keccak as _keccak

from hlmm.venue.hyperliquid.wallet import Wallet, address_of

__all__ = [
    "AGENT_TYPEHASH",
    "APPROVE_AGENT_PRIMARY_TYPE",
    "APPROVE_AGENT_TYPES",
    "L1_DOMAIN_SEPARATOR",
    "SIGNATURE_CHAIN_ID",
    "SigningError",
    "action_hash",
    "approve_agent_action",
    "approve_agent_request",
    "exchange_request",
    "recover_l1_signer",
    "recover_user_signed",
    "sign_l1_action",
    "sign_user_signed_action",
    "signed_l1_request",
]

_ADDR_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
_INT_TYPE_RE = re.compile(r"^(u?)int(\d{0,3})$")
_BYTES_N_RE = re.compile(r"^bytes([1-9]|[12][0-9]|3[0-2])$")
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_U64 = 1 << 64

# The SDK signs user actions with this chain id; any chain works, hyperliquidChain decides the environment.
SIGNATURE_CHAIN_ID = "0x66eee"
# Types whose payload goes to the exchange without a vault address (SDK Exchange._post_action).
_NO_VAULT_TYPES = frozenset({"usdClassTransfer", "sendAsset"})


class SigningError(ValueError):
    """Bad input to hashing/signing/recovery (never a silent coercion: a wrong byte is a wrong signer)."""


def keccak256(data: bytes) -> bytes:
    """Keccak-256 (Ethereum's, not SHA3-256)."""
    return _keccak.new(digest_bits=256, data=data).digest()


# ---- EIP-712 constants -------------------------------------------------------
_DOMAIN_TYPEHASH = keccak256(b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
_ZERO_ADDRESS_WORD = bytes(32)


def _domain_separator(name: str, version: str, chain_id: int) -> bytes:
    return keccak256(
        _DOMAIN_TYPEHASH
        + keccak256(name.encode())
        + keccak256(version.encode())
        + chain_id.to_bytes(32, "big")
        + _ZERO_ADDRESS_WORD  # verifyingContract is the zero address in both Hyperliquid domains
    )


L1_DOMAIN_SEPARATOR = _domain_separator("Exchange", "1", 1337)
AGENT_TYPEHASH = keccak256(b"Agent(string source,bytes32 connectionId)")
_L1_PREFIX = b"\x19\x01" + L1_DOMAIN_SEPARATOR
_SOURCE_HASH = {True: keccak256(b"a"), False: keccak256(b"b")}  # mainnet "a", testnet "b"
_USER_DOMAINS: dict[int, bytes] = {}


# ---- input checks --------------------------------------------------------------
def _check_u64(x: object, what: str) -> int:
    if isinstance(x, bool) or not isinstance(x, int) or not 0 <= x < _U64:
        raise SigningError(f"{what} must be an int in [0, 2^64), got {x!r}")
    return x


def _address_bytes(address: object, what: str) -> bytes:
    if not isinstance(address, str) or not _ADDR_RE.match(address):
        raise SigningError(f"{what} must be '0x' followed by 40 hex digits, got {address!r}")
    return bytes.fromhex(address[2:])


def _reject_floats(obj: object, path: str = "action") -> None:
    # Hyperliquid actions carry prices/sizes as strings and ids/times as ints; a float anywhere is float drift
    # about to be signed (and msgpack would happily encode it).
    if isinstance(obj, dict):
        for k, v in obj.items():
            _reject_floats(v, f"{path}.{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _reject_floats(v, f"{path}[{i}]")
    elif isinstance(obj, float):
        raise SigningError(f"{path} is a float ({obj!r}); prices and sizes must be wire strings")


# ---- L1 actions ------------------------------------------------------------------
def action_hash(action: dict, nonce: int, vault_address: str | None, expires_after: int | None) -> bytes:
    """The connectionId: keccak(msgpack(action) || nonce(8) || 0x00 | 0x01+vault(20) || [0x00 + expiry(8)])."""
    _check_u64(nonce, "nonce")
    _reject_floats(action)
    try:
        data = msgpack.packb(action)
    except (TypeError, ValueError, OverflowError) as e:
        raise SigningError(f"action cannot be msgpack-encoded: {e}") from None
    data += nonce.to_bytes(8, "big")
    if vault_address is None:
        data += b"\x00"
    else:
        data += b"\x01" + _address_bytes(vault_address, "vault_address")
    if expires_after is not None:
        data += b"\x00" + _check_u64(expires_after, "expires_after").to_bytes(8, "big")
    return keccak256(data)


def _l1_digest(connection_id: bytes, is_mainnet: bool) -> bytes:
    struct_hash = keccak256(AGENT_TYPEHASH + _SOURCE_HASH[bool(is_mainnet)] + connection_id)
    return keccak256(_L1_PREFIX + struct_hash)


def _format_sig(r: int, s: int, v: int) -> dict:
    # The SDK emits eth_utils.to_hex(int): lowercase, no leading zeros.
    return {"r": hex(r), "s": hex(s), "v": v}


def sign_l1_action(
    wallet: Wallet,
    action: dict,
    nonce: int,
    vault_address: str | None,
    expires_after: int | None,
    is_mainnet: bool,
) -> dict:
    """Signature ``{"r": "0x..", "s": "0x..", "v": 27|28}`` of an L1 action, as the SDK's ``sign_l1_action``."""
    digest = _l1_digest(action_hash(action, nonce, vault_address, expires_after), is_mainnet)
    return _format_sig(*wallet.sign_digest(digest))


def _parse_sig(signature: Mapping[str, Any]) -> bytes:
    """65 bytes r||s||recid from ``{"r","s","v"}`` (r/s as hex strings or ints, v 27/28 or 0/1)."""
    try:
        r, s, v = signature["r"], signature["s"], signature["v"]
    except (KeyError, TypeError):
        raise SigningError(f"signature must have r, s and v, got {signature!r}") from None
    vals = []
    for name, x in (("r", r), ("s", s)):
        if isinstance(x, str):
            try:
                x = int(x, 16)
            except ValueError:
                raise SigningError(f"signature {name} is not hex: {x!r}") from None
        if isinstance(x, bool) or not isinstance(x, int) or not 0 < x < _SECP256K1_N:
            raise SigningError(f"signature {name} out of range: {x!r}")
        vals.append(x)
    if isinstance(v, bool) or not isinstance(v, int) or v not in (0, 1, 27, 28):
        raise SigningError(f"signature v must be 27 or 28, got {v!r}")
    return vals[0].to_bytes(32, "big") + vals[1].to_bytes(32, "big") + bytes([v - 27 if v >= 27 else v])


def _recover(digest: bytes, signature: Mapping[str, Any]) -> str:
    sig = _parse_sig(signature)
    try:
        pub = PublicKey.from_signature_and_message(sig, digest, hasher=None)
    except Exception as e:  # libsecp256k1 refuses some (r, recid) combinations
        raise SigningError(f"signature does not recover a public key: {e}") from None
    return address_of(pub.format(compressed=False))


def recover_l1_signer(
    action: dict,
    nonce: int,
    vault_address: str | None,
    expires_after: int | None,
    signature: Mapping[str, Any],
    is_mainnet: bool,
) -> str:
    """Lowercase address that signed this L1 action (any tampering yields a different address)."""
    return _recover(_l1_digest(action_hash(action, nonce, vault_address, expires_after), is_mainnet), signature)


# ---- user-signed actions ----------------------------------------------------------
def _encode_field(typ: str, value: object, name: str) -> bytes:
    """EIP-712 encodeData word for one atomic field."""
    if typ == "string":
        if not isinstance(value, str):
            raise SigningError(f"field {name} (string) must be str, got {value!r}")
        return keccak256(value.encode())
    if typ == "address":
        return bytes(12) + _address_bytes(value, f"field {name}")
    if typ == "bool":
        if not isinstance(value, bool):
            raise SigningError(f"field {name} (bool) must be bool, got {value!r}")
        return int(value).to_bytes(32, "big")
    if typ == "bytes":
        b = bytes.fromhex(value[2:]) if isinstance(value, str) and value.startswith("0x") else value
        if not isinstance(b, (bytes, bytearray)):
            raise SigningError(f"field {name} (bytes) must be bytes or 0x-hex, got {value!r}")
        return keccak256(bytes(b))
    m = _BYTES_N_RE.match(typ)
    if m:
        n = int(m.group(1))
        b = bytes.fromhex(value[2:]) if isinstance(value, str) and value.startswith("0x") else value
        if not isinstance(b, (bytes, bytearray)) or len(b) != n:
            raise SigningError(f"field {name} ({typ}) must be {n} bytes, got {value!r}")
        return bytes(b) + bytes(32 - n)
    m = _INT_TYPE_RE.match(typ)
    if m:
        bits = int(m.group(2) or 256)
        if bits % 8 or not 8 <= bits <= 256:
            raise SigningError(f"unsupported EIP-712 field type {typ!r} for field {name}")
        if isinstance(value, bool) or not isinstance(value, int):
            raise SigningError(f"field {name} ({typ}) must be int, got {value!r}")
        if m.group(1):
            if not 0 <= value < (1 << bits):
                raise SigningError(f"field {name} ({typ}) out of range: {value}")
            return value.to_bytes(32, "big")
        if not -(1 << (bits - 1)) <= value < (1 << (bits - 1)):
            raise SigningError(f"field {name} ({typ}) out of range: {value}")
        return value.to_bytes(32, "big", signed=True)
    raise SigningError(f"unsupported EIP-712 field type {typ!r} for field {name}")


def _user_signed_digest(action: Mapping[str, Any], payload_types: list[dict], primary_type: str) -> bytes:
    try:
        chain_id = int(action["signatureChainId"], 16)
    except (KeyError, TypeError, ValueError):
        raise SigningError(f"action needs signatureChainId as hex, got {action.get('signatureChainId')!r}") from None
    domain = _USER_DOMAINS.get(chain_id)
    if domain is None:
        domain = _USER_DOMAINS[chain_id] = _domain_separator("HyperliquidSignTransaction", "1", chain_id)
    sig = ",".join(f"{t['type']} {t['name']}" for t in payload_types)
    words = [keccak256(f"{primary_type}({sig})".encode())]
    for t in payload_types:
        if t["name"] not in action:
            raise SigningError(f"action lacks field {t['name']!r} required by {primary_type}")
        words.append(_encode_field(t["type"], action[t["name"]], t["name"]))
    return keccak256(b"\x19\x01" + domain + keccak256(b"".join(words)))


def sign_user_signed_action(
    wallet: Wallet, action: dict, payload_types: list[dict], primary_type: str, is_mainnet: bool
) -> dict:
    """Sign a user-signed action (approveAgent, usdSend, ...) as the SDK's ``sign_user_signed_action``.

    Like the SDK, sets ``signatureChainId`` and ``hyperliquidChain`` on ``action`` (they are part of the posted
    payload). A ``hyperliquidChain`` already present that contradicts ``is_mainnet`` is an error.
    """
    chain = "Mainnet" if is_mainnet else "Testnet"
    if action.get("hyperliquidChain", chain) != chain:
        raise SigningError(f"action is for {action['hyperliquidChain']} but is_mainnet={is_mainnet}")
    action["signatureChainId"] = SIGNATURE_CHAIN_ID
    action["hyperliquidChain"] = chain
    return _format_sig(*wallet.sign_digest(_user_signed_digest(action, payload_types, primary_type)))


def recover_user_signed(
    action: Mapping[str, Any], payload_types: list[dict], primary_type: str, signature: Mapping[str, Any]
) -> str:
    """Lowercase signer of a user-signed action (uses the action's own signatureChainId/hyperliquidChain)."""
    return _recover(_user_signed_digest(action, payload_types, primary_type), signature)


APPROVE_AGENT_PRIMARY_TYPE = "HyperliquidTransaction:ApproveAgent"
APPROVE_AGENT_TYPES: list[dict] = [
    {"name": "hyperliquidChain", "type": "string"},
    {"name": "agentAddress", "type": "address"},
    {"name": "agentName", "type": "string"},
    {"name": "nonce", "type": "uint64"},
]


def approve_agent_action(
    agent_address: str, agent_name: str | None, nonce: int, is_mainnet: bool
) -> tuple[dict, list[dict], str]:
    """(action, payload_types, primary_type) for approveAgent, ready for ``sign_user_signed_action``.

    The action always carries ``agentName`` (``""`` when None) because that is what is signed; the SDK then drops
    the key from the posted payload for an unnamed agent — ``approve_agent_request`` does the whole sequence.
    """
    _address_bytes(agent_address, "agent_address")
    if agent_name is not None and not isinstance(agent_name, str):
        raise SigningError(f"agent_name must be str or None, got {agent_name!r}")
    action = {
        "type": "approveAgent",
        "signatureChainId": SIGNATURE_CHAIN_ID,
        "hyperliquidChain": "Mainnet" if is_mainnet else "Testnet",
        "agentAddress": agent_address.lower(),
        "agentName": agent_name or "",
        "nonce": _check_u64(nonce, "nonce"),
    }
    return action, [dict(t) for t in APPROVE_AGENT_TYPES], APPROVE_AGENT_PRIMARY_TYPE


def approve_agent_request(
    wallet: Wallet, agent_address: str, agent_name: str | None, nonce: int, is_mainnet: bool
) -> dict:
    """The complete /exchange body approving ``agent_address`` (signed by the master ``wallet``)."""
    action, types, primary = approve_agent_action(agent_address, agent_name, nonce, is_mainnet)
    signature = sign_user_signed_action(wallet, action, types, primary, is_mainnet)
    if agent_name is None:
        del action["agentName"]  # unnamed agent: signed with "", posted without the key (SDK behaviour)
    return exchange_request(action, signature, nonce, None, None)


# ---- request body -------------------------------------------------------------------
def exchange_request(
    action: dict, signature: dict, nonce: int, vault_address: str | None, expires_after: int | None
) -> dict:
    """The /exchange POST body, same keys and order as the SDK's ``Exchange._post_action``."""
    _check_u64(nonce, "nonce")
    if vault_address is not None:
        _address_bytes(vault_address, "vault_address")
        vault_address = vault_address.lower()
    if expires_after is not None:
        _check_u64(expires_after, "expires_after")
    if action.get("type") in _NO_VAULT_TYPES:
        vault_address = None  # these are signed without a vault; the SDK never sends one with them
    return {
        "action": action,
        "nonce": nonce,
        "signature": signature,
        "vaultAddress": vault_address,
        "expiresAfter": expires_after,
    }


def signed_l1_request(
    wallet: Wallet,
    action: dict,
    nonce: int,
    vault_address: str | None,
    expires_after: int | None,
    is_mainnet: bool,
) -> dict:
    """Sign an L1 action and wrap it into the /exchange body in one call."""
    sig = sign_l1_action(wallet, action, nonce, vault_address, expires_after, is_mainnet)
    return exchange_request(action, sig, nonce, vault_address, expires_after)
