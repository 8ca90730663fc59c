"""Validated configuration: a TOML file plus CLI overrides, checked before anything connects.

Secrets never live here: the private key comes from ``HLMM_PRIVATE_KEY`` or a keystore file whose
path may be configured (its password from ``HLMM_KEYSTORE_PASSWORD``).
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hlmm.estimators.params import EstimatorParams
from hlmm.market.instrument import InstrumentError, parse_coin
from hlmm.risk.params import RiskParams
from hlmm.strategy.params import StrategyParams

FORBIDDEN_KEYS = {"private_key", "privatekey", "secret", "secret_key", "mnemonic", "api_secret"}


def _is_local_host(host: str) -> bool:
    """``--network local`` must never resolve a public name: only ``localhost`` and loopback/private IP literals."""
    import ipaddress

    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False  # a DNS name: resolving it is already a public lookup
    return ip.is_loopback or ip.is_private or ip.is_link_local


class ConfigError(ValueError):
    """A bad config: the message names the field, the value and why."""


class ReferenceParams(BaseModel):
    """Cross-venue reference feed. No default symbol exists: None means 'derive or disable'."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    binance_symbol: str | None = Field(
        None, description="explicit Binance USD-M symbol (e.g. 'btcusdt'), 'off' to disable, None = auto"
    )
    stale_s: float = Field(3.0, gt=0, description="reference quotes older than this contribute nothing")
    allow_mismatch: bool = Field(
        False, description="accept a binance_symbol that is not the traded asset's known equivalent"
    )

    @field_validator("binance_symbol")
    @classmethod
    def _lower(cls, v: str | None) -> str | None:
        if v is None:
            return None
        v = v.strip().lower()
        if not v or not v.isalnum():
            raise ValueError("must be an alphanumeric Binance symbol such as 'btcusdt', or 'off'")
        return v


class RequoteParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_interval_s: float = Field(0.25, ge=0, description="minimum time between quote cycles")
    max_interval_s: float = Field(5.0, gt=0, description="requote at least this often")
    price_move_bps: float = Field(1.0, ge=0, description="fair-price move that triggers a requote")
    tolerance_bps: float = Field(2.0, ge=0, description="keep a resting order within this of its target")
    size_tolerance: float = Field(0.2, ge=0, le=1, description="keep when size differs by <= this fraction")
    max_actions_per_cycle: int = Field(40, ge=1)


class CoinConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy: StrategyParams = StrategyParams()
    risk: RiskParams
    estimators: EstimatorParams = EstimatorParams()
    reference: ReferenceParams = ReferenceParams()
    requote: RequoteParams = RequoteParams()


class AccountConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    address: str | None = Field(None, description="account (master/sub/vault) address to trade and query")
    vault_address: str | None = None
    keystore_path: Path | None = Field(None, description="encrypted keystore; password from HLMM_KEYSTORE_PASSWORD")

    @field_validator("address", "vault_address")
    @classmethod
    def _addr(cls, v: str | None) -> str | None:
        if v is None:
            return None
        v = v.strip().lower()
        if len(v) != 42 or not v.startswith("0x") or any(c not in "0123456789abcdef" for c in v[2:]):
            raise ValueError("must be a 0x-prefixed 20-byte hex address")
        return v


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    network: Literal["mainnet", "testnet", "local"] = "local"
    local_url: str = "http://127.0.0.1:8765"
    state_dir: Path = Path("state")
    log_dir: Path = Path("logs")
    metrics_port: int | None = Field(None, ge=1, le=65535)
    dead_man_s: float = Field(30.0, ge=5, description="scheduleCancel window, refreshed while healthy")
    foreign_orders: Literal["cancel", "adopt", "refuse"] = "cancel"
    guardian_timeout_s: float = Field(
        5.0, gt=0, allow_inf_nan=False,
        description="live: the guardian process cancels everything when the trader is silent this long",
    )
    batch_interval_s: float = Field(
        0.1, ge=0, le=5, description="live adapter: collect actions this long into one signed batch (0 = send at once)"
    )
    hip3_fee_scale: dict[str, float] = Field(
        default_factory=dict,
        description="HIP-3 deployer fee scale per dex name in [0, 3] (not in perpDexs); unlisted dexes use 1",
    )

    @field_validator("local_url")
    @classmethod
    def _check_local_url(cls, v: str) -> str:
        """A well-formed http(s)://host:port URL, so a typo is a config error and not a traceback at connect."""
        from urllib.parse import urlsplit

        try:
            u = urlsplit(v.strip())
            port = u.port  # raises ValueError on a non-numeric or out-of-range port
        except ValueError as e:
            raise ValueError(f"local_url {v!r} is not a valid URL: {e}") from None
        if u.scheme not in ("http", "https"):
            raise ValueError(f"local_url {v!r} must start with http:// or https://")
        if not u.hostname:
            raise ValueError(f"local_url {v!r} has no host")
        if port is None:
            raise ValueError(f"local_url {v!r} needs an explicit port, e.g. http://127.0.0.1:8765")
        if u.query or u.fragment or u.path not in ("", "/"):
            raise ValueError(f"local_url {v!r} must be scheme://host:port only (no path, query or fragment)")
        if not _is_local_host(u.hostname):
            raise ValueError(f"local_url {v!r}: the local exchange must be on this machine or a private network "
                             "(localhost or a loopback/private IP address), never a public host")
        return v.strip().rstrip("/")

    @field_validator("hip3_fee_scale")
    @classmethod
    def _check_fee_scale(cls, v: dict[str, float]) -> dict[str, float]:
        for dex, scale in v.items():
            if not dex or ":" in dex:
                raise ValueError(f"hip3_fee_scale keys are dex names (e.g. 'hyna'), got {dex!r}")
            if not (math.isfinite(scale) and 0.0 <= scale <= 3.0):
                raise ValueError(f"hip3_fee_scale[{dex!r}] must be in [0, 3], got {scale}")
        return v


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    run: RunConfig = RunConfig()
    account: AccountConfig = AccountConfig()
    coins: dict[str, CoinConfig]

    @model_validator(mode="after")
    def _check_coins(self) -> Config:
        if not self.coins:
            raise ValueError("at least one [coins.<name>] section is required")
        for name in self.coins:
            try:
                parse_coin(name)
            except InstrumentError as e:
                raise ValueError(str(e)) from None
        return self

    def coin(self, name: str) -> CoinConfig:
        try:
            return self.coins[name]
        except KeyError:
            raise ConfigError(f"coins.{name}: no such section (configured: {sorted(self.coins)})") from None


def _find_forbidden(d: Any, path: str = "") -> str | None:
    if isinstance(d, dict):
        for k, v in d.items():
            p = f"{path}.{k}" if path else str(k)
            if str(k).lower() in FORBIDDEN_KEYS:
                return p
            hit = _find_forbidden(v, p)
            if hit:
                return hit
    return None


def _parse_scalar(text: str) -> Any:
    """Parse an override value the way TOML would (numbers, booleans, strings)."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides; coin names with ':' are fine (``coins.hyna:HYPE.strategy.gamma=0.2``)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        if not all(parts):
            raise ConfigError(f"override {item!r}: empty key segment")
        node = raw
        for p in parts[:-1]:
            nxt = node.setdefault(p, {})
            if not isinstance(nxt, dict):
                raise ConfigError(f"override {item!r}: {p} is not a section")
            node = nxt
        node[parts[-1]] = _parse_scalar(value.strip())
    return raw


def _format_error(e: ValidationError, raw: dict[str, Any]) -> str:
    lines = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"])
        value = err.get("input")
        if isinstance(value, dict):
            value = "{...}"
        lines.append(f"config error: {loc or '<root>'} = {value!r}: {err['msg']}")
    return "\n".join(lines)


def load_config_dict(raw: dict[str, Any], overrides: list[str] | None = None) -> Config:
    raw = apply_overrides(raw, overrides or [])
    bad = _find_forbidden(raw)
    if bad:
        raise ConfigError(
            f"config error: {bad}: secrets must not be in a config file; "
            "set HLMM_PRIVATE_KEY or use account.keystore_path"
        )
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(_format_error(e, raw)) from None
    bad_num = _first_non_finite(cfg, "")
    if bad_num is not None:
        raise ConfigError(f"config error: {bad_num[0]}: must be a finite number, got {bad_num[1]!r}")
    _check_reference_symbols(cfg)
    _check_strategies(cfg)
    return cfg


def _check_strategies(cfg: Config) -> None:
    """Import every ``module:Class`` strategy and validate its parameters now, not at the first quote cycle."""
    from hlmm.strategy.strategies import StrategyConfigError, check_strategy

    for name, cc in cfg.coins.items():
        try:
            check_strategy(cc.strategy)
        except StrategyConfigError as e:
            raise ConfigError(f"config error: coins.{name}.{e}") from None


def _check_reference_symbols(cfg: Config) -> None:
    """Refuse a reference feed of another asset (failure #3: HYPE quoted off ``btcusdt``) at load time."""
    from hlmm.market.reference_symbols import reference_mismatch

    for name, cc in cfg.coins.items():
        sym = cc.reference.binance_symbol
        if sym is None or cc.reference.allow_mismatch:
            continue
        why = reference_mismatch(name, sym)
        if why is not None:
            raise ConfigError(f"config error: coins.{name}.reference.binance_symbol = {sym!r}: {why}; "
                              f"set coins.{name}.reference.allow_mismatch = true if this is deliberate")


def _first_non_finite(v: Any, path: str) -> tuple[str, float] | None:
    """The first non-finite number (nan, inf, -inf) anywhere in the validated config, with its field path: no
    limit may be infinite (``max_position_usd = inf`` would disable the position cap)."""
    if isinstance(v, bool):
        return None
    if isinstance(v, float):
        return None if math.isfinite(v) else (path, v)
    if isinstance(v, BaseModel):
        items: Any = ((k, getattr(v, k)) for k in type(v).model_fields)
    elif isinstance(v, dict):
        items = v.items()
    elif isinstance(v, list | tuple):
        items = enumerate(v)
    else:
        return None
    for k, x in items:
        found = _first_non_finite(x, f"{path}.{k}" if path else str(k))
        if found is not None:
            return found
    return None


def load_config(path: Path | str | None, overrides: list[str] | None = None) -> Config:
    """Load a TOML file (or the embedded default when ``path`` is None) and validate it."""
    if path is None:
        from importlib.resources import files

        text = files("hlmm").joinpath("defaults/demo.toml").read_text()
        src = "<embedded demo.toml>"
    else:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config error: file {p} does not exist")
        text = p.read_text()
        src = str(p)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config error: {src} is not valid TOML: {e}") from None
    return load_config_dict(raw, overrides)
