"""Settings: environment variables (``VEIL_*``) over an optional TOML file over defaults.

The names are the operator's contract (DESIGN.md): add, never rename.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Literal

from pydantic import field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from veil.domain.infobip import CALLBACK_TIMEOUT
from veil.sip.endpoint import is_ip
from veil.sip.grammar import parse_uri


def split_host_port(value: str) -> tuple[str, int]:
    """``127.0.0.1:8000`` or ``[::1]:8000`` to (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise ValueError(f"expected host:port, got {value!r}")
    return host.strip("[]"), int(port)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VEIL_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./veil.db"
    http_listen: str = "127.0.0.1:8000"
    public_url: str = "http://127.0.0.1:8000"
    sip_listen: str = "127.0.0.1:5060"
    trunk_outbound: str | None = None
    trunk_username: str | None = None
    trunk_password: str | None = None
    trunk_allow: str = "127.0.0.1/32"
    media: str = "auto"
    media_ports: str = "10000-59999"  # rtpengine's UDP range with VEIL_MEDIA=auto
    # Where external rtpengines (VEIL_MEDIA=udp:...) send DTMF: their dtmf-log-dest.
    media_dtmf_listen: str = "127.0.0.1:22233"
    recordings_dir: Path = Path("./recordings")
    files_dir: Path = Path("./files")  # audio files uploaded through the Infobip-style API
    log_level: str = "info"
    # Webhook delivery (veil.webhooks.delivery).
    webhook_timeout: float = 5.0  # seconds for one request, connect to response
    webhook_max_age: float = 86_400.0  # seconds after an event that it is still retried
    webhook_concurrency: int = 128  # requests in flight per node
    # Seconds Veil waits for an Infobip-style callbackUrl's answer (then its backup).
    infobip_callback_timeout: float = CALLBACK_TIMEOUT
    # Refuse private, loopback, link-local targets; unset: on in the production profile.
    webhook_block_private: bool | None = None
    # "embedded" (one machine, everything on loopback: the default) or "production"
    # (defaults that assume customers' URLs are on the internet).
    profile: Literal["embedded", "production"] = "embedded"

    # Set by load_settings(); not an environment variable.
    config_file: Path | None = None

    @property
    def block_private_targets(self) -> bool:
        """Whether callbacks to private and loopback addresses are refused."""
        if self.webhook_block_private is not None:
            return self.webhook_block_private
        return self.profile == "production"

    @field_validator("http_listen", "media_dtmf_listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        split_host_port(value)
        return value

    @field_validator("sip_listen")
    @classmethod
    def _sip_listen(cls, value: str) -> str:
        if value != "off":  # an API-only node
            split_host_port(value)
        return value

    @field_validator("trunk_outbound")
    @classmethod
    def _trunk(cls, value: str | None) -> str | None:
        if value:
            uri = parse_uri(value)  # raises ParseError (a ValueError) with the reason
            if not is_ip(uri.host.strip("[]")):
                raise ValueError("VEIL_TRUNK_OUTBOUND needs an IP address, e.g. sip:10.0.0.5:5060")
            if uri.transport not in ("udp", "tcp"):
                raise ValueError("VEIL_TRUNK_OUTBOUND transport must be udp or tcp")
        return value or None

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("VEIL_PUBLIC_URL must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "VEIL_DATABASE_URL must be sqlite+aiosqlite:///PATH or postgresql+asyncpg://..."
            )
        return value

    @field_validator("trunk_allow")
    @classmethod
    def _networks(cls, value: str) -> str:
        for part in value.split(","):
            if part.strip():
                ipaddress.ip_network(part.strip(), strict=False)
        return value

    @field_validator("webhook_timeout", "webhook_max_age", "infobip_callback_timeout")
    @classmethod
    def _positive_seconds(cls, value: float) -> float:
        if not value > 0:
            raise ValueError("must be a positive number of seconds")
        return value

    @field_validator("webhook_concurrency")
    @classmethod
    def _concurrency(cls, value: int) -> int:
        if value < 1:
            raise ValueError("VEIL_WEBHOOK_CONCURRENCY must be at least 1")
        return value

    @field_validator("media")
    @classmethod
    def _media(cls, value: str) -> str:
        if value not in ("auto", "off") and not value.startswith("udp:"):
            raise ValueError("VEIL_MEDIA must be auto, off or udp:host:port[,...]")
        return value

    @field_validator("media_ports")
    @classmethod
    def _media_ports(cls, value: str) -> str:
        low, _, high = value.partition("-")
        if not (low.isdigit() and high.isdigit() and 1024 <= int(low) < int(high) <= 65535):
            raise ValueError(
                "VEIL_MEDIA_PORTS must be LOW-HIGH within 1024-65535, e.g. 10000-59999"
            )
        return value

    def media_port_range(self) -> tuple[int, int]:
        low, _, high = self.media_ports.partition("-")
        return int(low), int(high)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Explicit arguments, then the environment, then the TOML file (if any).
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from ``overrides``, the environment, then ``config_file`` (TOML, keys
    without the ``VEIL_`` prefix, e.g. ``database_url = "..."``), then defaults."""
    if config_file is None:
        return Settings(**overrides)
    if not config_file.is_file():
        raise FileNotFoundError(f"config file not found: {config_file}")

    class FileSettings(Settings):
        model_config = SettingsConfigDict(env_prefix="VEIL_", extra="ignore", toml_file=config_file)

    return FileSettings(config_file=config_file, **overrides)
