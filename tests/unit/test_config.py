"""Settings: defaults, validation with one-line errors naming the setting, ``*_FILE`` secrets,
the ``INTAKE_CONFIG`` TOML file, and secrets kept out of ``repr``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from intake_bot.config import (
    KdfProfile,
    LogFormat,
    Settings,
    SettingsError,
    load_settings,
)
from intake_bot.crypto import KDF_INSECURE_TEST, KDF_MODERATE, KDF_SENSITIVE

TOKEN = "123456789:AAE-CANARYTOKENxxxxxxxxxxxxxxxxxxxxx"
DB_PASSWORD = "SECRETPW"
PG_URL = f"postgresql+asyncpg://u:{DB_PASSWORD}@h/db"


def settings_error(environ: dict[str, str]) -> str:
    """The message of the SettingsError that loading ``environ`` raises; it is one line."""
    with pytest.raises(SettingsError) as raised:
        load_settings(environ)
    message = str(raised.value)
    assert message
    assert "\n" not in message
    assert "\r" not in message
    return message


def test_defaults(tmp_path: Path) -> None:
    settings = load_settings({"INTAKE_DATA_DIR": str(tmp_path)})
    assert settings.data_dir == tmp_path
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'intake.db'}"
    assert settings.signing_key_pin == tmp_path / "signing-key.pin"
    assert settings.blob_dir == tmp_path / "blobs"
    assert (settings.admin_host, settings.admin_port) == ("127.0.0.1", 8080)
    assert settings.admin_public_url == "http://127.0.0.1:8080"
    assert settings.kdf_profile is KdfProfile.MODERATE
    assert settings.telegram_api_url == "https://api.telegram.org"
    assert settings.telegram_token is None
    assert settings.log_format is LogFormat.CONSOLE
    assert settings.log_level == "INFO"
    assert settings.runtime_dir == Path("/dev/shm")
    assert settings.enrolment_hours == 72
    assert settings.questionnaire is None


def test_default_data_dir_is_data_under_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings({"HOME": "/root", "PATH": "/bin", "INTAKEX": "ignored"})
    assert settings.data_dir == tmp_path / "data"
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'data' / 'intake.db'}"
    assert settings.signing_key_pin == tmp_path / "data" / "signing-key.pin"


def test_relative_paths_become_absolute(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings({"INTAKE_DATA_DIR": "d", "INTAKE_SIGNING_KEY_PIN": "p/pin"})
    assert settings.data_dir == tmp_path / "d"
    assert settings.signing_key_pin == tmp_path / "p" / "pin"


def test_values_are_parsed(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "INTAKE_DATA_DIR": str(tmp_path),
            "INTAKE_DATABASE_URL": PG_URL,
            "INTAKE_TELEGRAM_TOKEN": f" {TOKEN}\n",
            "INTAKE_TELEGRAM_API_URL": "http://127.0.0.1:8081/",
            "INTAKE_ADMIN_HOST": "0.0.0.0",  # noqa: S104
            "INTAKE_ADMIN_PORT": "9443",
            "INTAKE_ADMIN_PUBLIC_URL": "https://intake.example.org",
            "INTAKE_LOG_FORMAT": "JSON",
            "INTAKE_LOG_LEVEL": "debug",
            "INTAKE_KDF_PROFILE": "Sensitive",
            "INTAKE_ENROLMENT_HOURS": "24",
            "INTAKE_RUNTIME_DIR": str(tmp_path / "run"),
            "INTAKE_QUESTIONNAIRE": str(tmp_path / "q.yaml"),
        }
    )
    assert settings.database_url == PG_URL
    assert settings.telegram_token is not None
    assert settings.telegram_token.reveal() == TOKEN.encode()
    assert settings.telegram_api_url == "http://127.0.0.1:8081"
    assert (settings.admin_host, settings.admin_port) == ("0.0.0.0", 9443)  # noqa: S104
    assert settings.admin_public_url == "https://intake.example.org"
    assert settings.log_format is LogFormat.JSON
    assert settings.log_level == "DEBUG"
    assert settings.kdf_profile is KdfProfile.SENSITIVE
    assert settings.enrolment_hours == 24
    assert settings.runtime_dir == tmp_path / "run"
    assert settings.questionnaire == tmp_path / "q.yaml"


def test_public_url_follows_host_and_port() -> None:
    settings = load_settings({"INTAKE_ADMIN_HOST": "10.0.0.5", "INTAKE_ADMIN_PORT": "9000"})
    assert settings.admin_public_url == "http://10.0.0.5:9000"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("INTAKE_ADMIN_PORT", "http"),
        ("INTAKE_ADMIN_PORT", ""),
        ("INTAKE_ADMIN_PORT", "0"),
        ("INTAKE_ADMIN_PORT", "70000"),
        ("INTAKE_ADMIN_PORT", "65536"),
        ("INTAKE_ADMIN_PORT", "-1"),
        ("INTAKE_ADMIN_PORT", "80.5"),
        ("INTAKE_LOG_LEVEL", "verbose"),
        ("INTAKE_LOG_FORMAT", "xml"),
        ("INTAKE_KDF_PROFILE", "fast"),
        ("INTAKE_KDF_PROFILE", "insecure_test"),
        ("INTAKE_DATABASE_URL", f"mysql://u:{DB_PASSWORD}@h/db"),
        ("INTAKE_DATABASE_URL", f"postgresql://u:{DB_PASSWORD}@h/db"),
        ("INTAKE_DATABASE_URL", "sqlite:///intake.db"),
        ("INTAKE_TELEGRAM_API_URL", "ftp://api.telegram.org"),
        ("INTAKE_TELEGRAM_API_URL", "api.telegram.org"),
        ("INTAKE_TELEGRAM_API_URL", "https://"),
        ("INTAKE_ADMIN_PUBLIC_URL", "javascript:alert(1)"),
        ("INTAKE_ENROLMENT_HOURS", "0"),
        ("INTAKE_ENROLMENT_HOURS", "-3"),
        ("INTAKE_ENROLMENT_HOURS", "soon"),
        ("INTAKE_TELEGRAM_TOKEN", "123456789:with space"),
        ("INTAKE_TELEGRAM_TOKEN", "123456789:AAE/path"),
        ("INTAKE_TELEGRAM_TOKEN", "   "),
    ],
)
def test_invalid_value_fails_naming_the_variable(variable: str, value: str) -> None:
    message = settings_error({variable: value})
    assert message.startswith(f"{variable}: ")
    assert DB_PASSWORD not in message
    if variable == "INTAKE_TELEGRAM_TOKEN" and value.strip():
        assert value.strip() not in message


@pytest.mark.parametrize(
    "variable",
    [
        "INTAKE_TELEGRAM_TOKN",
        "INTAKE_PORT",
        "INTAKE_LOGLEVEL",
        "INTAKE_QUESTIONNAIRE_FILE",  # only secrets may come from *_FILE
        "INTAKE_DATA_DIR_FILE",
        "INTAKE_",
    ],
)
def test_unknown_intake_variable_fails_naming_it(variable: str) -> None:
    message = settings_error({variable: "x"})
    assert message.startswith(f"{variable}: ")
    assert "unknown" in message


# Secrets from files.


def test_token_and_database_url_from_files(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(f"{TOKEN}\n", encoding="utf-8")
    url_file = tmp_path / "url"
    url_file.write_text(f"  {PG_URL}\n\n", encoding="utf-8")
    settings = load_settings(
        {
            "INTAKE_TELEGRAM_TOKEN_FILE": str(token_file),
            "INTAKE_DATABASE_URL_FILE": str(url_file),
        }
    )
    assert settings.telegram_token is not None
    assert settings.telegram_token.reveal() == TOKEN.encode()
    assert settings.database_url == PG_URL


@pytest.mark.parametrize("variable", ["INTAKE_TELEGRAM_TOKEN_FILE", "INTAKE_DATABASE_URL_FILE"])
def test_missing_secret_file_fails_naming_the_variable(variable: str, tmp_path: Path) -> None:
    message = settings_error({variable: str(tmp_path / "missing")})
    assert message.startswith(f"{variable}: ")


def test_unreadable_secret_file_fails_naming_the_variable(tmp_path: Path) -> None:
    binary = tmp_path / "token"
    binary.write_bytes(b"\xff\xfe\x00token")
    message = settings_error({"INTAKE_TELEGRAM_TOKEN_FILE": str(binary)})
    assert message.startswith("INTAKE_TELEGRAM_TOKEN_FILE: ")
    directory = settings_error({"INTAKE_TELEGRAM_TOKEN_FILE": str(tmp_path)})
    assert directory.startswith("INTAKE_TELEGRAM_TOKEN_FILE: ")


def test_an_invalid_value_from_a_file_is_not_echoed(tmp_path: Path) -> None:
    url_file = tmp_path / "url"
    url_file.write_text(f"mysql://u:{DB_PASSWORD}@h/db", encoding="utf-8")
    message = settings_error({"INTAKE_DATABASE_URL_FILE": str(url_file)})
    assert "INTAKE_DATABASE_URL" in message
    assert DB_PASSWORD not in message


def test_a_secret_and_its_file_together_do_not_depend_on_order(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("111111111:AAE-FROMFILExxxxxxxxxxxxxxxxxxxxxxx", encoding="utf-8")
    pairs = [("INTAKE_TELEGRAM_TOKEN", TOKEN), ("INTAKE_TELEGRAM_TOKEN_FILE", str(token_file))]
    outcomes: list[bytes | str] = []
    for ordered in (pairs, pairs[::-1]):
        try:
            token = load_settings(dict(ordered)).telegram_token
        except SettingsError as exc:
            outcomes.append(type(exc).__name__)
        else:
            assert token is not None
            outcomes.append(token.reveal())
    assert outcomes[0] == outcomes[1]


# The TOML file named by INTAKE_CONFIG.


def write_toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "intake.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_toml_values_are_applied(tmp_path: Path) -> None:
    config = write_toml(
        tmp_path,
        f"""
        data_dir = "{tmp_path / "data"}"
        admin_port = 9000
        log_level = "debug"
        log_format = "json"
        kdf_profile = "sensitive"
        telegram_api_url = "http://127.0.0.1:8081"
        enrolment_hours = 12
        """.replace("\n        ", "\n"),
    )
    settings = load_settings({"INTAKE_CONFIG": str(config)})
    assert settings.data_dir == tmp_path / "data"
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'data' / 'intake.db'}"
    assert settings.admin_port == 9000
    assert settings.log_level == "DEBUG"
    assert settings.log_format is LogFormat.JSON
    assert settings.kdf_profile is KdfProfile.SENSITIVE
    assert settings.telegram_api_url == "http://127.0.0.1:8081"
    assert settings.enrolment_hours == 12


def test_environment_overrides_toml(tmp_path: Path) -> None:
    config = write_toml(tmp_path, 'admin_port = 9000\nlog_level = "debug"\n')
    settings = load_settings({"INTAKE_CONFIG": str(config), "INTAKE_ADMIN_PORT": "9100"})
    assert settings.admin_port == 9100
    assert settings.log_level == "DEBUG"


def test_an_invalid_toml_value_fails_naming_the_setting(tmp_path: Path) -> None:
    config = write_toml(tmp_path, "admin_port = 0\n")
    message = settings_error({"INTAKE_CONFIG": str(config)})
    assert "ADMIN_PORT" in message.upper()


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("admin_prot = 9000\n", "admin_prot"),
        ("[admin]\nport = 9000\n", "admin"),
        ('config = "other.toml"\n', "config"),
        ('questionnaire_file = "q.yaml"\n', "questionnaire_file"),
    ],
)
def test_unknown_toml_key_fails(tmp_path: Path, text: str, key: str) -> None:
    message = settings_error({"INTAKE_CONFIG": str(write_toml(tmp_path, text))})
    assert message.startswith(key)
    assert "unknown" in message


def test_token_directly_in_toml_is_refused_without_echoing_it(tmp_path: Path) -> None:
    config = write_toml(tmp_path, f'telegram_token = "{TOKEN}"\n')
    message = settings_error({"INTAKE_CONFIG": str(config)})
    assert "telegram_token" in message
    assert TOKEN not in message
    assert TOKEN.split(":")[1] not in message


def test_token_file_in_toml_is_accepted(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    config = write_toml(tmp_path, f'telegram_token_file = "{token_file}"\n')
    settings = load_settings({"INTAKE_CONFIG": str(config)})
    assert settings.telegram_token is not None
    assert settings.telegram_token.reveal() == TOKEN.encode()


def test_missing_token_file_in_toml_fails_naming_the_key(tmp_path: Path) -> None:
    config = write_toml(tmp_path, f'telegram_token_file = "{tmp_path / "missing"}"\n')
    assert settings_error({"INTAKE_CONFIG": str(config)}).startswith("telegram_token_file")


@pytest.mark.parametrize(
    "text",
    [
        'admin_port = "9000\n',
        "admin_port = = 1\n",
        f"database_url = postgresql+asyncpg://u:{DB_PASSWORD}@h/db\n",
        "admin_port = 1\nadmin_port = 2\n",
    ],
)
def test_invalid_toml_fails_with_one_line_naming_intake_config(tmp_path: Path, text: str) -> None:
    message = settings_error({"INTAKE_CONFIG": str(write_toml(tmp_path, text))})
    assert message.startswith("INTAKE_CONFIG: ")
    assert DB_PASSWORD not in message


def test_missing_toml_file_fails_naming_intake_config(tmp_path: Path) -> None:
    message = settings_error({"INTAKE_CONFIG": str(tmp_path / "missing.toml")})
    assert message.startswith("INTAKE_CONFIG: ")


# Secrets never appear in repr.


def test_repr_holds_neither_token_nor_database_password(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "INTAKE_DATA_DIR": str(tmp_path),
            "INTAKE_TELEGRAM_TOKEN": TOKEN,
            "INTAKE_DATABASE_URL": PG_URL,
        }
    )
    assert settings.telegram_token is not None
    for shown in (repr(settings), str(settings), f"{settings}", f"{settings!r}"):
        assert TOKEN not in shown
        assert TOKEN.split(":")[1] not in shown
        assert DB_PASSWORD not in shown
        assert str(tmp_path) in shown  # the rest is shown
    assert TOKEN not in repr(settings.telegram_token)
    assert TOKEN not in f"{settings.telegram_token}"


# KDF profiles.


@pytest.mark.parametrize(
    ("profile", "params", "floor"),
    [
        (KdfProfile.MODERATE, KDF_MODERATE, KDF_MODERATE),
        (KdfProfile.SENSITIVE, KDF_SENSITIVE, KDF_MODERATE),
        (KdfProfile.INSECURE_TEST, KDF_INSECURE_TEST, KDF_INSECURE_TEST),
    ],
)
def test_kdf_profile_params_and_floor(profile: KdfProfile, params: object, floor: object) -> None:
    assert profile.params == params
    assert profile.floor == floor
    assert load_settings({"INTAKE_KDF_PROFILE": profile.value}).kdf_profile is profile


def test_only_the_test_profile_lowers_the_floor() -> None:
    lowered = [p for p in KdfProfile if p.floor != KDF_MODERATE]
    assert lowered == [KdfProfile.INSECURE_TEST]
    assert KDF_INSECURE_TEST.opslimit < KDF_MODERATE.opslimit
    assert KDF_INSECURE_TEST.memlimit < KDF_MODERATE.memlimit


# INTAKE_ADMIN_PORT for any text.

ARABIC_INDIC_DIGITS = "".join(chr(0x660 + i) for i in range(10))
DIGITISH = "0123456789" + ARABIC_INDIC_DIGITS + "\u00b2\u00b3\u0085\x1c \t\n+-_."
"""Characters near the edge of "a whole number": other scripts' digits, superscripts,
unusual white space, signs and separators."""

PORT_TEXT = st.one_of(
    st.text(),
    st.integers(min_value=-10, max_value=70_000).map(str),
    st.from_regex(r"\s*[0-9]{1,6}\s*", fullmatch=True),
    st.text(alphabet=DIGITISH, max_size=8),
)


@given(PORT_TEXT)
@example("8080")
@example(" 443\n")
@example("0")
@example("65536")
@example("²")
@example("1_000")
@example("+80")
def test_admin_port_parses_any_text_to_a_port_or_a_settings_error(text: str) -> None:
    try:
        settings = load_settings({"INTAKE_DATA_DIR": "/nonexistent", "INTAKE_ADMIN_PORT": text})
    except SettingsError as exc:
        message = str(exc)
        assert message.startswith("INTAKE_ADMIN_PORT: ")
        assert "\n" not in message
        return
    assert isinstance(settings, Settings)
    assert 1 <= settings.admin_port <= 65535
    assert settings.admin_port == int(text)
    assert settings.admin_public_url == f"http://127.0.0.1:{settings.admin_port}"


def test_load_settings_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("INTAKE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("INTAKE_ADMIN_PORT", "9123")
    assert load_settings().admin_port == 9123
    monkeypatch.setenv("INTAKE_ADMN_PORT", "9123")
    assert settings_error_from_process().startswith("INTAKE_ADMN_PORT: ")


def settings_error_from_process() -> str:
    with pytest.raises(SettingsError) as raised:
        load_settings()
    return str(raised.value)
