"""Configuration: config.toml plus environment overrides, validated once at start-up."""

from __future__ import annotations

import base64
import binascii
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
FERNET_KEY_BYTES = 32


# Insight's stickiness looks 4 weeks back and its cohorts 3 months on.
MIN_ACTIVITY_RETENTION_DAYS = 120


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
class CommunitySettings:
    """Show (我型我秀) and reading (e校园): likes, their anti-farming rules, moderation (config [community])."""

    # Likes between two members who like each other's posts: only this many each way per 7 days earn points.
    ring_likes_per_week: int = 3
    # A like from a member registered fewer than this many days ago earns its author nothing.
    new_member_days: int = 7
    # Posts wait for a volunteer's approval before anyone else sees them.
    show_premoderation: bool = False
    # This many reports hide a post until a volunteer decides.
    show_reports_to_hide: int = 3
    # The longest video a post may carry, in seconds.
    show_video_max_seconds: int = 120
    # A reading note counts (and can be liked) from this many characters.
    reading_note_min_length: int = 30
    # A font with Chinese glyphs for certificates (a path; empty: look in the usual system places).
    certificate_font: str = ""


@dataclass(frozen=True)
class BroadcastSettings:
    """Broadcasts (config.toml [broadcasts]): quiet hours in local time and how often progress is shown."""

    quiet_start: time = time(22, 0)
    quiet_end: time = time(8, 0)
    progress_seconds: float = 3.0


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


def _parse_community(table: dict[str, Any]) -> CommunitySettings:
    """The [community] table: switches are booleans, numbers positive (new_member_days may be 0: no waiting)."""
    values: dict[str, Any] = {}
    for key, default in vars(CommunitySettings()).items():
        value = _get(table, key, type(default), "community", default)
        if (
            isinstance(default, int)
            and not isinstance(default, bool)
            and value < (0 if key == "new_member_days" else 1)
        ):
            raise ConfigError(f"community.{key}", "must be positive")
        values[key] = value
    return CommunitySettings(**values)


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


def _parse_broadcasts(table: dict[str, Any]) -> BroadcastSettings:
    """The [broadcasts] table: quiet hours as HH:MM, progress refresh between 1 and 60 seconds."""
    progress = _get(table, "progress_seconds", (int, float), "broadcasts", 3.0)
    if isinstance(progress, bool) or not 1 <= progress <= 60:
        raise ConfigError("broadcasts.progress_seconds", "must be a number of seconds from 1 to 60")
    return BroadcastSettings(
        quiet_start=_parse_time(_get(table, "quiet_start", str, "broadcasts", "22:00"), "broadcasts.quiet_start"),
        quiet_end=_parse_time(_get(table, "quiet_end", str, "broadcasts", "08:00"), "broadcasts.quiet_end"),
        progress_seconds=float(progress),
    )


@dataclass(frozen=True)
class InsightSettings:
    """Insight (config.toml [insight]): activity retention, the cadres' weekly digest, the Mini App."""

    # Days of activity records kept (models/activity.py).
    retention_days: int = 400
    # The weekly digest: ISO weekday (1 = Monday) and local time.
    digest_weekday: int = 1
    digest_time: time = time(9, 0)
    # The Mini App's public https address (empty: no Mini App button) and where the bot serves it in polling mode.
    webapp_url: str = ""
    webapp_listen: str = "127.0.0.1"
    webapp_port: int = 8090
    # Mini App initData older than this is refused (Telegram signs it when the cadre opens the app).
    initdata_max_age_seconds: int = 86400


def _parse_insight(table: dict[str, Any], env: dict[str, str]) -> InsightSettings:
    """The [insight] table; WEBAPP_URL in the environment overrides insight.webapp_url."""
    days = _get(table, "retention_days", int, "insight", 400)
    if days < MIN_ACTIVITY_RETENTION_DAYS:
        raise ConfigError("insight.retention_days", f"must be at least {MIN_ACTIVITY_RETENTION_DAYS}")
    weekday = _get(table, "digest_weekday", int, "insight", 1)
    if not 1 <= weekday <= 7:
        raise ConfigError("insight.digest_weekday", "must be 1 (Monday) to 7 (Sunday)")
    url = env.get("WEBAPP_URL") or _get(table, "webapp_url", str, "insight", "")
    if url and not url.startswith("https://"):
        raise ConfigError("insight.webapp_url", "Telegram opens Mini Apps only from an https:// address")
    max_age = _get(table, "initdata_max_age_seconds", int, "insight", 86400)
    if max_age <= 0:
        raise ConfigError("insight.initdata_max_age_seconds", "must be positive")
    return InsightSettings(
        retention_days=days,
        digest_weekday=weekday,
        digest_time=_parse_time(_get(table, "digest_time", str, "insight", "09:00"), "insight.digest_time"),
        webapp_url=url,
        webapp_listen=_get(table, "webapp_listen", str, "insight", "127.0.0.1"),
        webapp_port=_get(table, "webapp_port", int, "insight", 8090),
        initdata_max_age_seconds=max_age,
    )


@dataclass(frozen=True)
class FeedbackSettings:
    """The satisfaction rating round (config.toml [feedback]): every N months, asked on a day at a local time."""

    satisfaction_every_months: int = 3
    satisfaction_ask_day: int = 1
    satisfaction_ask_time: time = time(10, 0)
    # Periods shown side by side on the cadres' satisfaction screen (the trend).
    index_periods: int = 4


@dataclass(frozen=True)
class QuizSettings:
    """Quizzes (config.toml [quizzes]): how often the countdown of a question is edited, in seconds."""

    countdown_seconds: int = 5


def _parse_feedback(table: dict[str, Any]) -> FeedbackSettings:
    """[feedback]: the period divides a year (1, 2, 3, 4, 6 or 12 months); the day exists in every month."""
    every = _get(table, "satisfaction_every_months", int, "feedback", 3)
    if every not in (1, 2, 3, 4, 6, 12):
        raise ConfigError("feedback.satisfaction_every_months", "must be 1, 2, 3, 4, 6 or 12")
    day = _get(table, "satisfaction_ask_day", int, "feedback", 1)
    if not 1 <= day <= 28:
        raise ConfigError("feedback.satisfaction_ask_day", "must be from 1 to 28")
    at = _parse_time(_get(table, "satisfaction_ask_time", str, "feedback", "10:00"), "feedback.satisfaction_ask_time")
    periods = _get(table, "index_periods", int, "feedback", 4)
    if not 1 <= periods <= 8:
        raise ConfigError("feedback.index_periods", "must be from 1 to 8")
    return FeedbackSettings(every, day, at, periods)


def _parse_quizzes(table: dict[str, Any]) -> QuizSettings:
    """[quizzes]: the countdown is edited at most every few seconds (Telegram limits edits)."""
    seconds = _get(table, "countdown_seconds", int, "quizzes", 5)
    if not 3 <= seconds <= 60:
        raise ConfigError("quizzes.countdown_seconds", "must be from 3 to 60")
    return QuizSettings(seconds)


@dataclass(frozen=True)
class RunsSettings:
    """Runs and club events (config.toml [runs]): the check-in window around the start, in minutes."""

    checkin_before_minutes: int = 30
    checkin_after_minutes: int = 90


def _parse_runs(table: dict[str, Any]) -> RunsSettings:
    """The [runs] table: whole minutes from 0 to a day."""
    values: dict[str, int] = {}
    for key, default in vars(RunsSettings()).items():
        value = _get(table, key, int, "runs", default)
        if not 0 <= value <= MINUTES_PER_DAY:
            raise ConfigError(f"runs.{key}", f"must be from 0 to {MINUTES_PER_DAY}")
        values[key] = value
    return RunsSettings(**values)


MINUTES_PER_DAY = 24 * 60


@dataclass(frozen=True)
class CareSettings:
    """Counselling and rights/hardship help (config.toml [care])."""

    max_active_bookings: int = 2
    # Cancelling or moving a booking later than this before its start counts as a late cancellation (no-show).
    cancel_hours_before: int = 24
    # How far ahead members see free slots.
    horizon_days: int = 21
    # A request nobody has taken within this time goes to the bureau's care handlers.
    escalate_after_hours: int = 48


def _parse_care(table: dict[str, Any]) -> CareSettings:
    """The [care] table: every value a positive whole number."""
    values = {key: _get(table, key, int, "care", default) for key, default in vars(CareSettings()).items()}
    for key, value in values.items():
        if value <= 0:
            raise ConfigError(f"care.{key}", "must be positive")
    return CareSettings(**values)


def _care_key(env: dict[str, str]) -> str:
    """CARE_KEY from the environment: a Fernet key (32 url-safe base64 bytes), or empty (notes disabled)."""
    key = env.get("CARE_KEY", "").strip()
    if key:
        try:
            if len(base64.urlsafe_b64decode(key.encode())) != FERNET_KEY_BYTES:
                raise ValueError
        except (ValueError, binascii.Error):
            raise ConfigError("CARE_KEY", "must be a Fernet key (Fernet.generate_key())") from None
    return key


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
    insight: InsightSettings = field(default_factory=lambda: InsightSettings())
    feedback: FeedbackSettings = field(default_factory=FeedbackSettings)
    quizzes: QuizSettings = field(default_factory=QuizSettings)
    runs: RunsSettings = field(default_factory=RunsSettings)
    community: CommunitySettings = field(default_factory=CommunitySettings)
    care: CareSettings = field(default_factory=CareSettings)
    # The key that encrypts counselling notes (environment CARE_KEY); empty: notes are disabled.
    care_key: str = ""
    broadcasts: BroadcastSettings = field(default_factory=BroadcastSettings)
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
        insight=_parse_insight(_get(raw, "insight", dict, "config", {}), env),
        feedback=_parse_feedback(_get(raw, "feedback", dict, "config", {})),
        quizzes=_parse_quizzes(_get(raw, "quizzes", dict, "config", {})),
        runs=_parse_runs(_get(raw, "runs", dict, "config", {})),
        community=_parse_community(_get(raw, "community", dict, "config", {})),
        care=_parse_care(_get(raw, "care", dict, "config", {})),
        care_key=_care_key(env),
        broadcasts=_parse_broadcasts(_get(raw, "broadcasts", dict, "config", {})),
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
