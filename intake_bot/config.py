"""Settings: one frozen object, built once at start from ``INTAKE_*`` and an optional TOML file.

Precedence: environment over the TOML file named by ``INTAKE_CONFIG`` over defaults. A
secret setting ``X`` may instead be given as ``X_FILE`` (a path whose content, stripped of
surrounding white space, is the value), so that it never appears in a process listing or
an environment dump. Unknown ``INTAKE_*`` variables and unknown TOML keys are errors: a
misspelt setting must not silently fall back to a default (for example to the real
Telegram). Every error is one :class:`SettingsError` line naming the setting.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from intake_bot.crypto import KDF_INSECURE_TEST, KDF_MODERATE, KDF_SENSITIVE, KdfParams, Secret

PREFIX = "INTAKE_"

_E = TypeVar("_E", bound="StrEnum")
_T = TypeVar("_T")


class SettingsError(Exception):
    """An invalid or unknown setting; the message is one line that names it."""


class LogFormat(StrEnum):
    JSON = "json"
    CONSOLE = "console"


class KdfProfile(StrEnum):
    """Argon2id cost for new staff keys and the floor for unwrapping stored ones."""

    MODERATE = "moderate"
    SENSITIVE = "sensitive"
    INSECURE_TEST = "insecure-test"
    """Argon2id's minimum cost: only for the test suite, never for real data."""

    @property
    def params(self) -> KdfParams:
        return {
            KdfProfile.MODERATE: KDF_MODERATE,
            KdfProfile.SENSITIVE: KDF_SENSITIVE,
            KdfProfile.INSECURE_TEST: KDF_INSECURE_TEST,
        }[self]

    @property
    def receipt(self) -> KdfParams:
        """Argon2id cost of receipt codes. Fixed (not the staff-key cost): lookup ids are
        stored, so changing it would make every earlier receipt unfindable."""
        return KDF_INSECURE_TEST if self is KdfProfile.INSECURE_TEST else KDF_MODERATE

    @property
    def floor(self) -> KdfParams:
        """Stored parameters below this are refused (a downgraded database row)."""
        return KDF_INSECURE_TEST if self is KdfProfile.INSECURE_TEST else KDF_MODERATE


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything configurable. Built by :func:`load_settings`; passed down, never global."""

    data_dir: Path
    database_url: str = field(repr=False)
    signing_key_pin: Path
    telegram_token: Secret | None = field(repr=False)
    telegram_api_url: str
    admin_host: str
    admin_port: int
    admin_public_url: str
    admin_secure_cookies: bool
    """Mark session cookies ``Secure``; turn off only for plain http on a local machine."""
    admin_behind_proxy: bool
    """Count failed logins by the ``X-Forwarded-For`` address a proxy on the loopback sets."""
    admin_idle_minutes: int
    admin_session_hours: int
    questionnaire: Path | None
    log_format: LogFormat
    log_level: str
    runtime_dir: Path
    kdf_profile: KdfProfile
    enrolment_hours: int
    max_file_mb: int
    max_report_files: int
    max_report_mb: int
    max_open_drafts: int
    min_free_disk_mb: int
    rate_burst: int
    rate_per_minute: int

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"


_SECRETS = frozenset({"telegram_token", "database_url"})
"""Settings that may be given as ``X_FILE``: they can hold a token or a database password."""
_TOML_FILE_ONLY = frozenset({"telegram_token"})
"""Settings that a TOML file may only name by path: the token never sits in a config file."""
_NAMES = frozenset(
    {
        "data_dir",
        "database_url",
        "signing_key_pin",
        "telegram_token",
        "telegram_api_url",
        "admin_host",
        "admin_port",
        "admin_public_url",
        "admin_secure_cookies",
        "admin_behind_proxy",
        "admin_idle_minutes",
        "admin_session_hours",
        "questionnaire",
        "log_format",
        "log_level",
        "runtime_dir",
        "kdf_profile",
        "enrolment_hours",
        "max_file_mb",
        "max_report_files",
        "max_report_mb",
        "max_open_drafts",
        "min_free_disk_mb",
        "rate_burst",
        "rate_per_minute",
    }
)
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _env_name(name: str) -> str:
    return PREFIX + name.upper()


def _raw_values(environ: Mapping[str, str]) -> dict[str, str]:
    values: dict[str, str] = {}
    config_path = environ.get(PREFIX + "CONFIG")
    if config_path:
        values.update(_read_toml(Path(config_path)))
    for key, value in environ.items():
        if not key.startswith(PREFIX) or key == PREFIX + "CONFIG":
            continue
        name = key[len(PREFIX) :].lower()
        if name in _NAMES:
            values[name] = value
        elif name.endswith("_file") and name[: -len("_file")] in _SECRETS:
            if key[: -len("_FILE")] in environ:
                raise SettingsError(f"{key[: -len('_FILE')]} and {key}: give one, not both")
            values[name[: -len("_file")]] = _read_secret_file(key, value)
        else:
            raise SettingsError(f"{key}: unknown setting")
    return values


def _read_toml(path: Path) -> dict[str, str]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"INTAKE_CONFIG: cannot read {path} ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"INTAKE_CONFIG: {path} is not valid TOML ({exc})") from None
    out: dict[str, str] = {}
    for key, value in data.items():
        if key in _NAMES and key not in _TOML_FILE_ONLY:
            out[key] = str(value)
        elif key.endswith("_file") and key[: -len("_file")] in _SECRETS:
            out[key[: -len("_file")]] = _read_secret_file(f"{key} in {path}", str(value))
        else:
            raise SettingsError(f"{key} in {path}: unknown setting (secrets go in *_file)")
    return out


def _read_secret_file(label: str, path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        raise SettingsError(f"{label}: cannot read the file it names") from None


def _choice(enum: type[_E]) -> Callable[[str], _E]:
    def parse(value: str) -> _E:
        try:
            return enum(value.strip().lower())
        except ValueError:
            allowed = ", ".join(member.value for member in enum)
            raise ValueError(f"must be one of {allowed}") from None

    return parse


def _port(value: str) -> int:
    if not value.strip().isdigit() or not 1 <= int(value) <= 65535:
        raise ValueError("must be a whole number from 1 to 65535")
    return int(value)


def _positive(value: str) -> int:
    if not value.strip().isdigit() or int(value) < 1:
        raise ValueError("must be a whole number of at least 1")
    return int(value)


def _bool(value: str) -> bool:
    text = value.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _http_url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http:// or https:// URL")
    return value.strip().rstrip("/")


def _database_url(value: str) -> str:
    scheme = value.split("://", 1)[0]
    if scheme not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
        raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
    return value


def _log_level(value: str) -> str:
    if value.upper() not in _LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(_LOG_LEVELS)}")
    return value.upper()


def _token(value: str) -> str:
    token = value.strip()
    if not token or any(c.isspace() for c in token) or "/" in token:
        raise ValueError("must be a bot token without spaces or slashes")
    return token


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from ``environ`` (default: the process environment)."""
    raw = _raw_values(os.environ if environ is None else environ)

    def get(name: str, parse: Callable[[str], _T], default: _T) -> _T:
        if name not in raw:
            return default
        try:
            return parse(raw[name])
        except ValueError as exc:
            raise SettingsError(f"{_env_name(name)}: {exc}") from None

    data_dir = get("data_dir", lambda v: Path(v).expanduser(), Path("data")).absolute()
    host = get("admin_host", str.strip, "127.0.0.1")
    port = get("admin_port", _port, 8080)
    token = get("telegram_token", _token, "")
    return Settings(
        data_dir=data_dir,
        database_url=get(
            "database_url", _database_url, f"sqlite+aiosqlite:///{data_dir / 'intake.db'}"
        ),
        signing_key_pin=get("signing_key_pin", Path, data_dir / "signing-key.pin").absolute(),
        telegram_token=Secret(token.encode()) if token else None,
        telegram_api_url=get("telegram_api_url", _http_url, "https://api.telegram.org"),
        admin_host=host,
        admin_port=port,
        admin_public_url=get("admin_public_url", _http_url, f"http://{host}:{port}"),
        admin_secure_cookies=get("admin_secure_cookies", _bool, True),
        admin_behind_proxy=get("admin_behind_proxy", _bool, False),
        admin_idle_minutes=get("admin_idle_minutes", _positive, 15),
        admin_session_hours=get("admin_session_hours", _positive, 8),
        questionnaire=get("questionnaire", Path, None),
        log_format=get("log_format", _choice(LogFormat), LogFormat.CONSOLE),
        log_level=get("log_level", _log_level, "INFO"),
        runtime_dir=get("runtime_dir", Path, Path("/dev/shm")),  # noqa: S108  # tmpfs by design
        kdf_profile=get("kdf_profile", _choice(KdfProfile), KdfProfile.MODERATE),
        enrolment_hours=get("enrolment_hours", _positive, 72),
        max_file_mb=get("max_file_mb", _positive, 20),
        max_report_files=get("max_report_files", _positive, 50),
        max_report_mb=get("max_report_mb", _positive, 500),
        max_open_drafts=get("max_open_drafts", _positive, 1000),
        min_free_disk_mb=get("min_free_disk_mb", _positive, 1024),
        rate_burst=get("rate_burst", _positive, 30),
        rate_per_minute=get("rate_per_minute", _positive, 60),
    )
