"""Configuration: config.toml plus environment overrides, validated once at start-up."""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import load_dotenv

PROJECT_DIR = Path(__file__).resolve().parent
DEFAULT_CONFIG = PROJECT_DIR / "config.toml"
LANGUAGES = ("zh", "en")
UNIT_CODE = re.compile(r"^[a-z0-9]{1,16}$")


class ConfigError(Exception):
    """A configuration key is missing or wrong; the message names the key and the problem.

    `label` (with `params`, in `language`) names a CLI text in messages/ that says the same with the fix, for
    the mistakes an operator is most likely to make.
    """

    def __init__(
        self, key: str, problem: str, *, label: str = "", params: dict[str, Any] | None = None, language: str = "zh"
    ) -> None:
        super().__init__(f"config error: {key}: {problem}")
        self.key = key
        self.problem = problem
        self.label = label
        self.params = params or {}
        self.language = language


@dataclass(frozen=True)
class Unit:
    code: str
    name_zh: str
    name_en: str

    def name(self, locale: str) -> str:
        """The unit's name in the given language."""
        return self.name_en if locale == "en" else self.name_zh


@dataclass(frozen=True)
class PointsRule:
    name: str
    amount: int
    daily_cap: int


@dataclass(frozen=True)
class Limits:
    name_max_length: int = 32
    employee_no_pattern: str = r"^[A-Za-z0-9-]{2,20}$"
    history_page_size: int = 8
    ranking_size: int = 10
    pending_page_size: int = 10
    grant_max_amount: int = 500
    reason_max_length: int = 200


@dataclass(frozen=True)
class OutboxSettings:
    """Pacing and retries of the outbox sender (config.toml [outbox])."""

    global_per_second: float = 25.0
    group_per_minute: int = 20
    private_per_second: float = 1.0
    batch_size: int = 20
    max_attempts: int = 5
    in_flight_timeout_seconds: float = 60.0


@dataclass(frozen=True)
class SurveySettings:
    """Surveys (config.toml [surveys])."""

    # The reminder goes this many hours before a survey closes.
    reminder_hours: int = 24
    # Breakdowns (unit, age band) show a group only with at least this many respondents.
    min_group: int = 5
    # Anonymous answers are written in shuffled batches of at least this many (and at close).
    anonymous_batch: int = 5


def _parse_surveys(table: dict[str, Any]) -> SurveySettings:
    """The [surveys] table: whole numbers; the threshold and the batch at least 2 (1 would name the person)."""
    values = {key: _get(table, key, int, "surveys", default) for key, default in vars(SurveySettings()).items()}
    for key, value in values.items():
        if isinstance(value, bool) or value < (1 if key == "reminder_hours" else 2):
            raise ConfigError(f"surveys.{key}", "is too small")
    return SurveySettings(**values)


# Telegram's documented ceilings; the outbox must stay under them.
OUTBOX_CEILINGS = {"global_per_second": 30, "group_per_minute": 20, "private_per_second": 1, "batch_size": 100}
# A claimed row must outlive a whole batch plus the HTTP timeouts, or a slow send would be sent twice.
OUTBOX_MIN_IN_FLIGHT_SECONDS = 30


def _parse_outbox(table: dict[str, Any]) -> OutboxSettings:
    """The [outbox] table: every number positive and under Telegram's limits."""
    values: dict[str, Any] = {}
    for key, default in vars(OutboxSettings()).items():
        kind = (int, float) if isinstance(default, float) else int
        value = _get(table, key, kind, "outbox", default)
        if isinstance(value, bool):
            raise ConfigError(f"outbox.{key}", f"must be a number, got {value!r}")
        if value <= 0:
            raise ConfigError(f"outbox.{key}", "must be positive")
        ceiling = OUTBOX_CEILINGS.get(key)
        if ceiling is not None and value > ceiling:
            raise ConfigError(f"outbox.{key}", f"must be at most {ceiling}")
        values[key] = float(value) if isinstance(default, float) else value
    if values["in_flight_timeout_seconds"] < OUTBOX_MIN_IN_FLIGHT_SECONDS:
        raise ConfigError("outbox.in_flight_timeout_seconds", f"must be at least {OUTBOX_MIN_IN_FLIGHT_SECONDS}")
    return OutboxSettings(**values)


@dataclass(frozen=True)
class Config:
    org_name_zh: str
    org_name_en: str
    timezone: ZoneInfo
    default_language: str
    token: str
    api_base_url: str
    concurrent_updates: int
    ops_chat_id: int
    webhook_url: str
    webhook_listen: str
    webhook_port: int
    webhook_secret: str
    database_url: str
    busy_timeout_ms: int
    admin_ids: frozenset[int]
    units: tuple[Unit, ...]
    rules: dict[str, PointsRule]
    limits: Limits
    backup_time: time
    backup_keep: int
    backup_dir: Path
    tick_seconds: int
    misfire_grace_hours: int
    outbox: OutboxSettings = field(default_factory=OutboxSettings)
    surveys: SurveySettings = field(default_factory=SurveySettings)
    extra: dict[str, Any] = field(default_factory=dict)

    def unit(self, code: str) -> Unit | None:
        """The unit with this code, or None."""
        return next((u for u in self.units if u.code == code), None)

    def org_name(self, locale: str) -> str:
        """The organisation's name in the given language."""
        return self.org_name_en if locale == "en" else self.org_name_zh


def _get(table: dict[str, Any], key: str, kind: type | tuple[type, ...], path: str, default: Any = ...) -> Any:
    if key not in table:
        if default is ...:
            raise ConfigError(f"{path}.{key}", "is missing")
        return default
    value = table[key]
    # bool is an int in Python; a flag where a number belongs is a mistake worth naming.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ConfigError(f"{path}.{key}", f"must be {names}, got {value!r}")
    return value


def _parse_time(value: str, key: str) -> time:
    try:
        hour, minute = (int(part) for part in value.split(":"))
        return time(hour, minute)
    except ValueError:
        raise ConfigError(key, f"must be HH:MM, got {value!r}") from None


SQLITE_SCHEMES = ("sqlite", "sqlite+aiosqlite", "sqlite+pysqlite")
PG_SCHEMES = ("postgres", "postgresql", "postgresql+asyncpg", "postgresql+psycopg", "postgresql+psycopg2")


class UnsupportedDatabaseURL(ValueError):
    """A database URL whose scheme the project has no driver for."""


def sync_url(url: str) -> str:
    """The URL with the driver this project uses: pysqlite for SQLite, psycopg 3 for PostgreSQL."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise UnsupportedDatabaseURL(url)
    if scheme in SQLITE_SCHEMES:
        return f"sqlite://{rest}"
    if scheme in PG_SCHEMES:
        return f"postgresql+psycopg://{rest}"
    raise UnsupportedDatabaseURL(url)


def describe_database(url: str) -> str:
    """The database for a log line: dialect and file, or dialect and user@host:port/name; never a password."""
    scheme, _sep, rest = url.partition("://")
    dialect = scheme.split("+")[0]
    if dialect == "sqlite":
        return f"sqlite {rest.removeprefix('/') or ':memory:'}"
    parts = urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    host = parts.netloc.rpartition("@")[2] or "localhost"
    return f"postgresql {user}{host}{parts.path}"


def home_dir() -> Path:
    """Where config.toml, .env and data/ are: this checkout, or the working directory of an installed copy."""
    return PROJECT_DIR if (PROJECT_DIR / "config.toml").is_file() else Path.cwd()


def _resolve_sqlite_path(url: str, base: Path) -> str:
    """Make a relative SQLite file path absolute against the project directory."""
    scheme, _sep, rest = url.partition(":///")
    if scheme.startswith("sqlite") and rest and rest != ":memory:" and not rest.startswith("/"):
        return f"{scheme}:///{(base / rest).resolve()}"
    return url


def parse_config(raw: dict[str, Any], env: dict[str, str], base: Path = PROJECT_DIR) -> Config:
    """Build a Config from parsed TOML and environment variables, naming any bad key."""
    org = _get(raw, "organisation", dict, "config")
    bot = _get(raw, "bot", dict, "config", {})
    db = _get(raw, "database", dict, "config", {})
    tz_name = _get(org, "timezone", str, "organisation")
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError("organisation.timezone", f"unknown time zone {tz_name!r}") from None
    default_language = _get(org, "default_language", str, "organisation", "zh")
    if default_language not in LANGUAGES:
        raise ConfigError("organisation.default_language", f"must be one of {', '.join(LANGUAGES)}")

    units: list[Unit] = []
    raw_units = _get(raw, "units", list, "config")
    if not raw_units:
        raise ConfigError("units", "at least one unit is needed")
    for i, entry in enumerate(raw_units):
        path = f"units[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(path, "must be a table")
        code = _get(entry, "code", str, path)
        if not UNIT_CODE.match(code):
            raise ConfigError(f"{path}.code", f"{code!r} must be 1-16 lowercase letters or digits")
        if any(u.code == code for u in units):
            raise ConfigError(f"{path}.code", f"{code!r} appears twice")
        units.append(Unit(code, _get(entry, "name_zh", str, path), _get(entry, "name_en", str, path)))

    admins_raw = _get(_get(raw, "admins", dict, "config", {}), "telegram_ids", list, "admins", [])
    admin_ids: set[int] = set()
    for value in admins_raw:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError("admins.telegram_ids", f"{value!r} is not a Telegram user id")
        admin_ids.add(value)
    for part in env.get("BOT_ADMINS", "").split(","):
        if part.strip():
            if not part.strip().isdigit():
                raise ConfigError("BOT_ADMINS", f"{part.strip()!r} is not a Telegram user id")
            admin_ids.add(int(part.strip()))

    rules: dict[str, PointsRule] = {}
    raw_rules = _get(_get(raw, "points", dict, "config", {}), "rules", dict, "points", {})
    for name, rule in raw_rules.items():
        path = f"points.rules.{name}"
        if not isinstance(rule, dict):
            raise ConfigError(path, "must be a table")
        amount = _get(rule, "amount", int, path)
        cap = _get(rule, "daily_cap", int, path, 0)
        if amount < 0 or cap < 0:
            raise ConfigError(path, "amount and daily_cap must not be negative")
        rules[name] = PointsRule(name, amount, cap)

    limits_raw = _get(raw, "limits", dict, "config", {})
    defaults = Limits()
    limit_values: dict[str, Any] = {}
    for key, default in vars(defaults).items():
        value = _get(limits_raw, key, type(default), "limits", default)
        if isinstance(value, int) and value <= 0:
            raise ConfigError(f"limits.{key}", "must be positive")
        limit_values[key] = value
    try:
        re.compile(limit_values["employee_no_pattern"])
    except re.error as exc:
        raise ConfigError("limits.employee_no_pattern", f"not a regular expression: {exc}") from None

    backup = _get(raw, "backup", dict, "config", {})
    scheduler = _get(raw, "scheduler", dict, "config", {})
    database_url = env.get("DATABASE_URL") or _get(db, "url", str, "database")
    try:
        sync_url(database_url)
    except UnsupportedDatabaseURL:
        # Only the scheme is shown: the rest of a URL may hold a password.
        key = "DATABASE_URL" if env.get("DATABASE_URL") else "database.url"
        scheme = database_url.partition("://")[0] if "://" in database_url else ""
        raise ConfigError(
            key,
            f"{scheme!r} is not a database this bot supports: "
            "use sqlite:///path/to/file.db or postgresql://user@host/database (postgres:// works too)",
            label="cli_database_url_unsupported",
            params={"key": key, "scheme": scheme},
            language=default_language,
        ) from None
    api_base_url = env.get("BOT_API_BASE_URL") or _get(bot, "api_base_url", str, "bot", "https://api.telegram.org/bot")
    concurrent = _get(bot, "concurrent_updates", int, "bot", 64)
    if concurrent < 1:
        raise ConfigError("bot.concurrent_updates", "must be at least 1")

    return Config(
        org_name_zh=_get(org, "name_zh", str, "organisation"),
        org_name_en=_get(org, "name_en", str, "organisation"),
        timezone=tz,
        default_language=default_language,
        token=env.get("BOT_TOKEN", "").strip(),
        api_base_url=api_base_url,
        concurrent_updates=concurrent,
        ops_chat_id=_get(bot, "ops_chat_id", int, "bot", 0),
        webhook_url=env.get("WEBHOOK_URL") or _get(bot, "webhook_url", str, "bot", ""),
        webhook_listen=_get(bot, "webhook_listen", str, "bot", "127.0.0.1"),
        webhook_port=_get(bot, "webhook_port", int, "bot", 8443),
        webhook_secret=env.get("WEBHOOK_SECRET", ""),
        database_url=_resolve_sqlite_path(database_url, base),
        busy_timeout_ms=_get(db, "busy_timeout_ms", int, "database", 5000),
        admin_ids=frozenset(admin_ids),
        units=tuple(units),
        rules=rules,
        limits=Limits(**limit_values),
        backup_time=_parse_time(_get(backup, "time", str, "backup", "03:30"), "backup.time"),
        backup_keep=max(1, _get(backup, "keep", int, "backup", 7)),
        backup_dir=(base / _get(backup, "directory", str, "backup", "data/backups")).resolve(),
        tick_seconds=max(1, _get(scheduler, "tick_seconds", int, "scheduler", 30)),
        misfire_grace_hours=_get(scheduler, "misfire_grace_hours", int, "scheduler", 12),
        outbox=_parse_outbox(_get(raw, "outbox", dict, "config", {})),
        surveys=_parse_surveys(_get(raw, "surveys", dict, "config", {})),
    )


def load_config(path: str | Path | None = None, env: dict[str, str] | None = None) -> Config:
    """Read .env (if present), then the config file (`path`, GONGSHE_CONFIG or config.toml), and validate.

    In a checkout these are next to bot.py; an installed copy (pip install .) reads them from the working directory,
    and relative paths in the file (the SQLite file, backups) are relative to that directory too.
    """
    home = home_dir()
    if env is None:
        load_dotenv(home / ".env", override=False)
        env = dict(os.environ)
    config_path = Path(path or env.get("GONGSHE_CONFIG") or home / "config.toml")
    try:
        raw = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(config_path), "file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(config_path), f"not valid TOML: {exc}") from None
    return parse_config(raw, env, home)
