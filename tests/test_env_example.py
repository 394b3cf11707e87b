"""`.env.example` documents every setting, with its default."""

from pathlib import Path

from ratesvc.config import PREFIX, Settings, load_settings

ENV_EXAMPLE = Path(__file__).resolve().parents[1] / ".env.example"


def _documented() -> dict[str, str]:
    entries = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        text = line.lstrip("# ").strip()
        if text.startswith(PREFIX) and "=" in text:
            key, _, value = text.partition("=")
            entries[key] = value
    return entries


def test_every_setting_is_documented() -> None:
    documented = set(_documented())
    expected = {PREFIX + field.upper() for field in Settings.__struct_fields__}
    assert documented == expected


def test_documented_defaults_load() -> None:
    defaults = {k: v for k, v in _documented().items() if v != ""}
    assert load_settings(defaults, env_file=None) == load_settings({}, env_file=None)
