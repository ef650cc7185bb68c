"""Configuration: the shipped file is valid, environment overrides work, mistakes name the key."""

from __future__ import annotations

import copy
import tomllib

import pytest

from config import PROJECT_DIR, ConfigError, parse_config

RAW = tomllib.loads((PROJECT_DIR / "config.toml").read_text(encoding="utf-8"))


def test_shipped_config_is_valid_and_realistic():
    config = parse_config(copy.deepcopy(RAW), {})
    assert len(config.units) >= 20
    assert config.timezone.key == "Asia/Shanghai"
    assert config.database_url.startswith("sqlite:///") and config.database_url.endswith("data/gongshe.db")
    assert config.token == ""
    assert config.rules["run_attendance"].daily_cap > 0


def test_environment_overrides():
    env = {
        "BOT_TOKEN": " 1:abc ",
        "DATABASE_URL": "postgresql+asyncpg://u@h/db",
        "BOT_API_BASE_URL": "http://127.0.0.1:9000/bot",
        "BOT_ADMINS": "11, 22",
    }
    config = parse_config(copy.deepcopy(RAW), env)
    assert config.token == "1:abc"
    assert config.database_url == "postgresql+asyncpg://u@h/db"
    assert config.api_base_url == "http://127.0.0.1:9000/bot"
    assert config.admin_ids == {11, 22}


def _broken(path: str, value: object) -> dict:
    raw = copy.deepcopy(RAW)
    *parents, last = path.split(".")
    node = raw
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    node[last] = value
    return raw


@pytest.mark.parametrize(
    ("path", "value", "key"),
    [
        ("organisation.timezone", "Mars/Olympus", "organisation.timezone"),
        ("organisation.default_language", "fr", "organisation.default_language"),
        ("units.0.code", "Bad Code", "units[0].code"),
        ("units.1.code", "hq", "units[1].code"),
        ("admins.telegram_ids", ["abc"], "admins.telegram_ids"),
        ("limits.history_page_size", 0, "limits.history_page_size"),
        ("limits.employee_no_pattern", "([", "limits.employee_no_pattern"),
        ("backup.time", "25h", "backup.time"),
        ("bot.concurrent_updates", "many", "bot.concurrent_updates"),
        ("database.url", "nowhere", "database.url"),
    ],
)
def test_mistakes_name_the_key(path, value, key):
    with pytest.raises(ConfigError) as err:
        parse_config(_broken(path, value), {})
    assert err.value.key == key
    assert key in str(err.value)


def test_bad_admin_ids_in_environment():
    with pytest.raises(ConfigError) as err:
        parse_config(copy.deepcopy(RAW), {"BOT_ADMINS": "12,abc"})
    assert err.value.key == "BOT_ADMINS"


def test_points_rule_must_not_be_negative():
    raw = copy.deepcopy(RAW)
    raw["points"]["rules"]["like_received"]["amount"] = -1
    with pytest.raises(ConfigError) as err:
        parse_config(raw, {})
    assert err.value.key == "points.rules.like_received"
