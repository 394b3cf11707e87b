from pathlib import Path

import pytest

from ratesvc.config import SettingsError, load_settings
from support.processes import serve_refusing_to_start


def test_defaults_when_environment_is_empty() -> None:
    settings = load_settings({}, env_file=None)
    assert settings.port == 8000
    assert settings.redis_url is None
    assert settings.rate_limit_parsed == (1500, 60)


def test_values_are_coerced_from_strings() -> None:
    settings = load_settings(
        {"RATESVC_PORT": "9000", "RATESVC_TRUST_PROXY": "1", "RATESVC_CORS_ORIGINS": "a, b"},
        env_file=None,
    )
    assert settings.port == 9000
    assert settings.trust_proxy is True
    assert settings.cors_origins == ("a", "b")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("RATESVC_PORT", "eighty"),
        ("RATESVC_PORT", "70000"),
        ("RATESVC_LOG_LEVEL", "LOUD"),
        ("RATESVC_STALE_AFTER_S", "-1"),
        ("RATESVC_RATE_LIMIT", "many"),
    ],
)
def test_invalid_value_names_the_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        load_settings({variable: value}, env_file=None)


def test_misspelt_variable_is_refused() -> None:
    with pytest.raises(SettingsError, match="RATESVC_PROT"):
        load_settings({"RATESVC_PROT": "1"}, env_file=None)


def test_env_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("RATESVC_PORT=9100\nRATESVC_LOG_LEVEL=DEBUG\n")
    settings = load_settings({"RATESVC_PORT": "9200"}, env_file=env_file)
    assert settings.port == 9200
    assert settings.log_level == "DEBUG"


def test_invalid_key_value_is_not_echoed() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"RATESVC_DATABASE_URL": "postgresql://u:hunter2@h/db", "RATESVC_PORT": "x"})
    assert "hunter2" not in str(caught.value)


def test_serve_stops_with_one_line_on_bad_settings(tmp_path: Path) -> None:
    lines = serve_refusing_to_start({"RATESVC_PORT": "not-a-port"}, tmp_path)
    assert len(lines) == 1, lines
    assert "RATESVC_PORT" in lines[0]
