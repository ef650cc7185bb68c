"""Gongshe (工社): composition root. `python bot.py` runs the bot; see `python bot.py --help`.

Nothing happens at import: build_application(config) wires everything, main() reads the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import logging
import shlex
import signal
import sys
import tomllib
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool
from sqlmodel import Session
from telegram import Update
from telegram.constants import ParseMode
from telegram.error import InvalidToken, NetworkError, TelegramError
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder, Defaults
from telegram.request import BaseRequest

import handlers.admin
import handlers.broadcasts
import handlers.care
import handlers.clubs
import handlers.errors
import handlers.feedback
import handlers.forms
import handlers.ideas
import handlers.insight
import handlers.me
import handlers.members
import handlers.menu
import handlers.miniapp as miniapp
import handlers.points
import handlers.quizzes
import handlers.reading
import handlers.runs
import handlers.show
import handlers.surveys
import handlers.welfare
import handlers.workshops
import models.club_import
import models.quizzes.importing
import models.roster
import models.surveys.importing
import models.welfare.importing
from config import PROJECT_DIR, Config, ConfigError, describe_database, load_config, sync_url
from handlers.base import Section, install
from handlers.inbox import DoneMarker, InboxPoller, InboxWebhook, replay_unprocessed
from messages import Renderer, pick_locale
from models import club_import, me, members, surveys, welfare
from models.clock import Clock, utcnow
from models.db import Database, ensure_sqlite_dir
from models.errors import DomainError, NotFound
from models.leader import Leadership
from models.members import RosterRemoval, RosterResult, RosterRow
from models.roster import RosterFileError, parse_roster_csv
from models.stock_cache import STOCK_CHANNEL
from models.welfare.importing import (
    Action,
    PlannedItem,
    WelfareFileError,
    import_welfare,
    parse_welfare_file,
    plan_import,
    plan_new,
)
from scheduled import outbox as outbox_sender
from scheduled import runner
from scheduled.backup import backup_sqlite
from services import Services, notify

log = logging.getLogger("gongshe")


# The sections, in the order their handlers are tried ("Order matters!"): a new section is its own files plus one
# line here. The menu's catch-alls for stray text and unknown commands are installed after all of them.
SECTIONS: tuple[Section, ...] = (
    handlers.members.SECTION,
    handlers.menu.SECTION,
    handlers.points.SECTION,
    handlers.welfare.SECTION,
    handlers.feedback.SECTION,
    handlers.quizzes.SECTION,
    handlers.runs.SECTION,
    handlers.clubs.SECTION,
    handlers.show.SECTION,
    handlers.reading.SECTION,
    handlers.care.SECTION,
    handlers.surveys.SECTION,
    handlers.workshops.SECTION,
    handlers.me.SECTION,
    handlers.admin.SECTION,
    handlers.insight.SECTION,
    handlers.broadcasts.SECTION,
    handlers.forms.SECTION,
    handlers.ideas.SECTION,
)


def build_application(
    config: Config,
    *,
    request: BaseRequest | None = None,
    db: Database | None = None,
    scheduler: bool = True,
    clock: Clock | None = None,
) -> Application:
    """The whole bot: handlers, services, start-up hooks. `request` replaces the network, `clock` the time (tests)."""
    db = db or Database(config.database_url, config.busy_timeout_ms)
    services = Services(config, db, Renderer(), clock or Clock())
    builder = (
        ApplicationBuilder()
        .token(config.token)
        .base_url(config.api_base_url)
        .base_file_url(config.api_base_url.removesuffix("/bot") + "/file/bot")
        .defaults(Defaults(parse_mode=ParseMode.HTML, tzinfo=config.timezone))
        .concurrent_updates(config.concurrent_updates)
        .rate_limiter(AIORateLimiter(max_retries=0))
        .post_init(on_startup)
        .post_stop(on_stop)
        .post_shutdown(on_shutdown)
    )
    if request is not None:
        builder = builder.request(request).get_updates_request(request)
    # Updates are received by handlers/inbox.py (stored before they are confirmed), not by PTB's Updater.
    app = builder.updater(None).build()
    app.bot_data["services"] = services
    app.bot_data["start_scheduler"] = scheduler
    marker = DoneMarker(app, services.clock)
    marker.install()
    app.bot_data["inbox_marker"] = marker

    app.bot_data["runtime"] = install(app, SECTIONS, services.renderer, fallbacks=handlers.menu.FALLBACKS)
    handlers.errors.register(app)
    return app


async def on_startup(app: Application) -> None:
    """Sync units, publish the command lists, start the scheduler (PTB's post_init)."""
    services: Services = app.bot_data["services"]
    units = [(u.code, u.name_zh, u.name_en) for u in services.config.units]
    await services.db.write(members.sync_units, units)
    # PostgreSQL: another process's cancellation ends this process's cached "sold out" at once.
    services.db.listen(STOCK_CHANNEL, lambda payload: services.soldout.forget(_item_id(payload)))
    try:
        await handlers.menu.publish_commands(app)
    except TelegramError as exc:
        log.warning("could not publish the command list: %s", exc)
    if not app.bot_data.get("start_scheduler"):
        return
    # Every process handles updates; the elected leader alone sends the outbox and runs timed work.
    leadership = Leadership(services.db)
    leadership.start()
    app.bot_data["leadership"] = leadership
    if app.job_queue is not None:
        specs = runner.discover()
        await runner.ensure_tasks(services, specs)
        runner.start(app, services, may_run=lambda: leadership.is_leader)
    settings = services.config.outbox
    app.bot_data["outbox"] = outbox_sender.start(app, services.db, settings, may_send=lambda: leadership.is_leader)


def _item_id(payload: str | None) -> int | None:
    """The item id of a stock notification; None (forget every item) for anything else."""
    return int(payload) if payload and payload.isdigit() else None


async def on_stop(app: Application) -> None:
    """Send the replies still queued, then stop the outbox sender while the bot can finish its batch (post_stop)."""
    await app.bot_data["runtime"].replies.drain()
    sender: outbox_sender.OutboxSender | None = app.bot_data.pop("outbox", None)
    if sender is not None:
        await sender.stop()
    leadership: Leadership | None = app.bot_data.pop("leadership", None)
    if leadership is not None:
        await asyncio.to_thread(leadership.stop)


async def on_shutdown(app: Application) -> None:
    """Stop the outbox sender if it still runs, then close the database pools."""
    await on_stop(app)
    await app.bot_data["services"].db.dispose()


def upgrade_database(config: Config) -> None:
    """Apply every alembic migration up to head."""
    from alembic import command
    from alembic.config import Config as AlembicConfig

    ensure_sqlite_dir(config.database_url)
    here = Path(__file__).resolve().parent
    cfg = AlembicConfig(str(here / "alembic.ini"))
    cfg.set_main_option("script_location", str(here / "migrations"))
    cfg.attributes["database_url"] = config.database_url
    command.upgrade(cfg, "head")


def _cli_text(config: Config, key: str, **kw: object) -> str:
    return Renderer().label(config.default_language, key, **kw)


# Exit codes: 2 = fix the configuration or the command (retrying will not help); 3 = something needed is unreachable
# now (the Bot API, the database server), worth retrying. The systemd unit in deploy/ restarts only on the latter.
EXIT_CONFIG = 2
EXIT_UNAVAILABLE = 3


class StartupError(Exception):
    """The command cannot go on; `label` names the one-line CLI text that says why and what to do."""

    def __init__(self, label: str, exit_code: int = EXIT_CONFIG, **params: object) -> None:
        super().__init__(label)
        self.label, self.exit_code, self.params = label, exit_code, params


def _public_webhook_url(config: Config) -> str:
    """The webhook address as it may be shown: scheme, host, port and path (a password or query never)."""
    parts = urlsplit(config.webhook_url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2], query="", fragment="").geturl()


def _public_api_url(config: Config) -> str:
    """The Bot API base URL as it may be shown: without the token or a password, should either be in it."""
    parts = urlsplit(config.api_base_url)
    netloc = parts.netloc.rpartition("@")[2]
    url = parts._replace(netloc=netloc, query="", fragment="").geturl()
    return url.replace(config.token, "<token>") if config.token else url


def _unreachable(config: Config, exc: OperationalError) -> StartupError:
    """The database cannot be opened: which one (never its password) and the driver's first line on why."""
    text = str(exc.orig or exc).strip()
    reason = text.splitlines()[0] if text else type(exc).__name__
    password = make_url(sync_url(config.database_url)).password
    if password:
        reason = reason.replace(str(password), "***")
    database = describe_database(config.database_url)
    return StartupError("cli_database_unreachable", EXIT_UNAVAILABLE, database=database, reason=reason)


def _migrate(config: Config) -> None:
    """upgrade_database, or a StartupError naming the database when it cannot be opened."""
    try:
        upgrade_database(config)
    except OperationalError as exc:
        raise _unreachable(config, exc) from None


def _schema_is_current(config: Config) -> bool:
    """Whether the database is at the newest migration; reads only (for previews that must write nothing)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(PROJECT_DIR / "migrations")).get_current_head()
    engine = create_engine(sync_url(config.database_url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision() == head
    except OperationalError as exc:
        raise _unreachable(config, exc) from None
    finally:
        engine.dispose()


def _sqlite_file_missing(config: Config) -> bool:
    """A SQLite file database that does not exist yet (so a preview compares against nothing)."""
    url = make_url(sync_url(config.database_url))
    database = url.database or ""
    return url.get_backend_name() == "sqlite" and database not in ("", ":memory:") and not Path(database).exists()


def app_version() -> str:
    """This copy's version: pyproject.toml of a checkout, else the installed package's metadata."""
    try:
        return tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    except (OSError, tomllib.TOMLDecodeError, KeyError):
        pass
    try:
        return importlib.metadata.version("gongshe")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# INFO lines nobody running the bot needs: one per HTTP request to Telegram (its URL holds the token), one per
# webhook call (its path may be secret), one per scheduler tick.
QUIET_LOGGERS = ("httpx", "httpcore", "tornado.access", "apscheduler")


class LocalTimeFormatter(logging.Formatter):
    """Timestamps in the organisation's time zone, with their UTC offset, on every line alike."""

    def __init__(self, fmt: str, tz: tzinfo | None) -> None:
        super().__init__(fmt)
        self.tz = tz

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """The record's moment as '2026-12-01 09:30:00.123+08:00'."""
        return datetime.fromtimestamp(record.created, UTC).astimezone(self.tz).isoformat(" ", "milliseconds")


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a line is logged (not the stream of the moment it was set up)."""

    @property
    def stream(self) -> TextIO:  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def _worth_a_line(record: logging.LogRecord) -> bool:
    """Of alembic's INFO lines (plugins, dialect, DDL mode) only the schema upgrades are worth a line."""
    return (
        not record.name.startswith("alembic")
        or record.levelno > logging.INFO
        or record.getMessage().startswith("Running upgrade")
    )


def setup_logging(tz: tzinfo | None) -> None:
    """One handler on stderr with local timestamps; quiet the per-request and per-tick loggers."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "gongshe", False)]:
        root.removeHandler(old)
    handler = _StderrHandler()
    handler.gongshe = True  # type: ignore[attr-defined]
    handler.setFormatter(LocalTimeFormatter(LOG_FORMAT, tz))
    handler.addFilter(_worth_a_line)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def cmd_run(config: Config) -> int:
    """Run the bot: long polling, or a webhook when bot.webhook_url is set."""
    if not config.token:
        print(_cli_text(config, "cli_no_token"), file=sys.stderr)
        return EXIT_CONFIG
    try:
        _migrate(config)
        asyncio.run(serve(build_application(config), config))
    except StartupError as exc:
        print(_cli_text(config, exc.label, **exc.params), file=sys.stderr)
        return exc.exit_code
    return 0


async def serve(app: Application, config: Config) -> None:
    """Start the bot, handle what the inbox kept from before, receive updates until SIGINT/SIGTERM, then stop."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    marker: DoneMarker = app.bot_data["inbox_marker"]
    try:
        await app.initialize()  # getMe: the first call to Telegram, with the token
    except InvalidToken:
        await app.bot.shutdown()
        raise StartupError("cli_token_rejected", url=_public_api_url(config)) from None
    except NetworkError:  # TimedOut included: nothing answered at the Bot API's address
        await app.bot.shutdown()
        raise StartupError("cli_api_unreachable", EXIT_UNAVAILABLE, url=_public_api_url(config)) from None
    try:
        await on_startup(app)
        await app.start()
        marker.start()
        await replay_unprocessed(app)
        receiver: InboxPoller | InboxWebhook
        webapp: miniapp.MiniAppServer | None = None
        if config.webhook_url:
            path = urlsplit(config.webhook_url).path
            extra = miniapp.routes(app) if config.insight.webapp_url else ()
            receiver = InboxWebhook(app, config.webhook_listen, config.webhook_port, path, config.webhook_secret, extra)
            receiver.start()
            try:
                await app.bot.set_webhook(
                    config.webhook_url, secret_token=config.webhook_secret or None, allowed_updates=Update.ALL_TYPES
                )
            except TelegramError as exc:
                # Telegram checks the address (https, allowed port, resolvable host): say so in one line and stop
                # cleanly; updates the inbox already stored are kept for the next start.
                await receiver.stop()
                await app.stop()
                await marker.stop()
                await on_stop(app)
                raise StartupError("cli_webhook_refused", url=_public_webhook_url(config), reason=exc.message) from None
        else:
            receiver = InboxPoller(app)
            receiver.start()
            if config.insight.webapp_url:
                webapp = miniapp.MiniAppServer(app, config.insight.webapp_listen, config.insight.webapp_port)
                webapp.start()
        mode = "webhook" if config.webhook_url else "polling"
        database = describe_database(config.database_url)
        log.info("Gongshe %s running: bot @%s, %s, database %s", app_version(), app.bot.username, mode, database)
        await receiver.until(stopping)
        await receiver.stop()
        if webapp is not None:
            await webapp.stop()
        await app.stop()
        await marker.stop()
        await on_stop(app)
    finally:
        await app.shutdown()
        await on_shutdown(app)


# Excel on Chinese Windows saves "CSV (Comma delimited)" in GBK; GB18030 reads GBK and is a superset of it.
FILE_ENCODINGS = ("utf-8-sig", "gb18030")


def _read_text(config: Config, path: Path, unreadable: str) -> str:
    """The file's text in the first encoding that reads it; a StartupError saying what is wrong otherwise."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise StartupError("cli_file_missing", path=str(path)) from None
    except OSError:
        raise StartupError("cli_file_no_access", path=str(path)) from None
    for encoding in FILE_ENCODINGS:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise StartupError(unreadable, path=str(path))


def cmd_import_roster(config: Config, path: Path, remove_missing: bool = False, yes: bool = False) -> int:
    """Import a roster CSV: every bad line is reported and nothing is stored unless all lines are good.

    With remove_missing, entries the file no longer lists (in the units it covers) are removed, with their
    verified members erased; without `yes` that is only shown, and nothing at all is written.
    """
    text = _read_text(config, path, "cli_file_unreadable")
    try:
        rows = parse_roster_csv(text, (u.code for u in config.units), config.limits.employee_no_pattern)
    except RosterFileError as exc:
        for line, key, detail in exc.problems:
            print(_cli_text(config, f"cli_roster_{key}", line=line, detail=detail), file=sys.stderr)
        return 1
    if remove_missing and not yes:
        return _preview_roster(config, rows)
    _migrate(config)
    result = _store_roster(config, rows, remove_missing)
    counts = {"added": result.added, "updated": result.updated, "unchanged": result.unchanged}
    print(_cli_text(config, "cli_roster_done", verified=result.verified, **counts))
    if remove_missing:
        print(_cli_text(config, "cli_roster_removed", removed=result.removed, erased=result.erased))
    return 0


def _preview_roster(config: Config, rows: list[RosterRow]) -> int:
    """Show what import-roster --remove-missing --yes would do, writing nothing (not even a new database file)."""
    if _sqlite_file_missing(config):
        result, removals = RosterResult(len(rows), 0, 0), []
    elif not _schema_is_current(config):
        print(_cli_text(config, "cli_schema_outdated"), file=sys.stderr)
        return EXIT_CONFIG
    else:
        result, removals = _load_roster_preview(config, rows)
    counts = {"added": result.added, "updated": result.updated, "unchanged": result.unchanged}
    print(_cli_text(config, "cli_roster_preview", removed=result.removed, **counts))
    for r in removals:
        print(
            _cli_text(
                config,
                "cli_roster_removal",
                unit=r.unit_code,
                employee_no=r.employee_no,
                name=r.name,
                member=r.member_id is not None,
            )
        )
    if not removals:
        print(_cli_text(config, "cli_roster_removal_none"))
    print(_cli_text(config, "cli_roster_confirm"))
    return 0


def _load_roster_preview(config: Config, rows: list[RosterRow]) -> tuple[RosterResult, list[RosterRemoval]]:
    """The counts and removals of a roster import, read in one read-only transaction."""
    db = Database(config.database_url, config.busy_timeout_ms)
    with db.reading() as session:
        return members.preview_roster(session, rows)


def _store_roster(config: Config, rows: list[RosterRow], remove_missing: bool = False) -> RosterResult:
    """Import the roster in one transaction; members who left are deleted as their own /me deletion would."""
    db = Database(config.database_url, config.busy_timeout_ms)
    now = utcnow()

    def delete_account(session: Session, member_id: int) -> None:
        """Release and refund their welfare claims, then erase them (models/me.py)."""
        me.delete_account(session, member_id, now, config.timezone)

    renderer = Renderer()
    with db.writing() as session:
        members.sync_units(session, ((u.code, u.name_zh, u.name_en) for u in config.units))
        result = members.import_roster(
            session, rows, CLI_ACTOR_TELEGRAM_ID, remove_missing=remove_missing, erase=delete_account
        )
        # Applicants the roster now confirms are told, through the outbox the running bot sends.
        for member in result.newly_verified:
            if member.telegram_id is None:
                continue
            locale = pick_locale(member.language)
            text = renderer.render(locale, "members/decision_notice", approved=True, org=config.org_name(locale))
            notify(
                session, member.telegram_id, text, now=now, kind="roster_verified", dedupe_key=f"verified:{member.id}"
            )
        return result


def cmd_backup(config: Config) -> int:
    """Back up the SQLite database now; for PostgreSQL, say which pg_dump command to run instead (exit 2)."""
    url = make_url(sync_url(config.database_url))
    if url.get_backend_name() == "postgresql":
        print(_cli_text(config, "cli_backup_postgresql", command=_pg_dump_command(config)), file=sys.stderr)
        return EXIT_CONFIG
    path = Database(config.database_url).sqlite_path
    if path is None:
        print(_cli_text(config, "cli_backup_not_sqlite"), file=sys.stderr)
        return EXIT_CONFIG
    target = backup_sqlite(path, config.backup_dir, config.backup_keep, tz=config.timezone)
    print(_cli_text(config, "cli_backup_done", path=str(target)))
    return 0


def _pg_dump_command(config: Config) -> str:
    """The pg_dump command line for the configured PostgreSQL database, without its password."""
    url = make_url(sync_url(config.database_url))
    stamp = utcnow().astimezone(config.timezone).strftime("%Y%m%d-%H%M%S")
    words = ["pg_dump", "--format=custom", f"--file=gongshe-{stamp}.dump"]
    if url.host:
        words.append(f"--host={url.host}")
    if url.port:
        words.append(f"--port={url.port}")
    if url.username:
        words.append(f"--username={url.username}")
    words.append(url.database or "")
    return shlex.join(words)


WELFARE_FORMATS = {".toml": "toml", ".csv": "csv"}
# Items imported from a file are created as if by a bureau admin; 0 is no Telegram account.
CLI_ACTOR_TELEGRAM_ID = 0


def cmd_import_welfare(config: Config, path: Path, dry_run: bool = False) -> int:
    """Import welfare items (TOML or CSV): every bad line is reported and nothing is stored unless all are good.

    Items imported before (same key) are updated while they have not opened, and left alone after; `dry_run`
    shows what would happen and writes nothing.
    """
    fmt = WELFARE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        print(_cli_text(config, "cli_welfare_bad_format", path=str(path)), file=sys.stderr)
        return EXIT_CONFIG
    text = _read_text(config, path, "cli_welfare_unreadable")
    now = utcnow()
    try:
        # No `now` here: an item that has ended may be one imported before, which is left alone, not refused.
        drafts = parse_welfare_file(text, fmt, (u.code for u in config.units), config.timezone)
        if dry_run:
            if _sqlite_file_missing(config):
                plan = plan_new(drafts, now)
            elif not _schema_is_current(config):
                print(_cli_text(config, "cli_schema_outdated"), file=sys.stderr)
                return EXIT_CONFIG
            else:
                plan = _plan_welfare(config, drafts, now)
        else:
            _migrate(config)
            plan = _store_welfare(config, drafts, now)
    except WelfareFileError as exc:
        for line, key, detail in exc.problems:
            print(_cli_text(config, f"cli_welfare_{key}", line=line, detail=detail), file=sys.stderr)
        return 1
    _report_welfare(config, plan, dry_run)
    return 0


def _report_welfare(config: Config, plan: list[PlannedItem], dry_run: bool) -> None:
    """One line per item that is (or would be) changed or left alone, then the totals."""
    counts = {
        "created": sum(p.action == Action.CREATE for p in plan),
        "updated": sum(p.action == Action.UPDATE for p in plan),
        "unchanged": sum(p.action == Action.UNCHANGED for p in plan),
        "started": sum(p.action == Action.STARTED for p in plan),
    }
    if dry_run:
        print(_cli_text(config, "cli_welfare_dry_run"))
    lines = {
        Action.CREATE: "cli_welfare_plan_create" if dry_run else "",
        Action.UPDATE: "cli_welfare_plan_update" if dry_run else "cli_welfare_item_updated",
        Action.UNCHANGED: "cli_welfare_plan_unchanged" if dry_run else "",
        Action.STARTED: "cli_welfare_item_started",
    }
    for p in plan:
        if lines[p.action]:
            fields = ", ".join(p.changed)
            print(_cli_text(config, lines[p.action], line=p.line, title=p.title, id=p.item_id, fields=fields))
    if dry_run:
        print(_cli_text(config, "cli_welfare_plan_summary", **counts))
        return
    created = [p.item_id for p in plan if p.action == Action.CREATE]
    if created:
        print(_cli_text(config, "cli_welfare_done", count=len(created), ids=", ".join(map(str, created))))
    print(_cli_text(config, "cli_welfare_summary", **counts))


def _plan_welfare(config: Config, drafts: list[welfare.ItemDraft], now: datetime) -> list[PlannedItem]:
    """What importing the items would do, read in one read-only transaction."""
    db = Database(config.database_url, config.busy_timeout_ms)
    with db.reading() as session:
        return plan_import(session, drafts, now)


def _store_welfare(config: Config, drafts: list[welfare.ItemDraft], now: datetime) -> list[PlannedItem]:
    """Create, update or leave alone the parsed items in one transaction (all or nothing)."""
    db = Database(config.database_url, config.busy_timeout_ms)
    with db.writing() as session:
        members.sync_units(session, ((u.code, u.name_zh, u.name_en) for u in config.units))
        return import_welfare(session, drafts, CLI_ACTOR_TELEGRAM_ID, now)


def cmd_import_quiz(config: Config, path: Path) -> int:
    """Create a quiz (or replace one nobody has started) from a TOML file; every bad line reported, nothing stored."""
    if path.suffix.lower() != ".toml":
        print(_cli_text(config, "cli_quiz_bad_format", path=str(path)), file=sys.stderr)
        return EXIT_CONFIG
    text = _read_text(config, path, "cli_quiz_unreadable")
    importing = models.quizzes.importing
    try:
        parsed = importing.parse_quiz_file(text, config.timezone, {u.code for u in config.units})
        _migrate(config)
        db = Database(config.database_url, config.busy_timeout_ms)
        with db.writing() as session:
            members.sync_units(session, ((u.code, u.name_zh, u.name_en) for u in config.units))
            quiz, created = importing.store_quiz(session, parsed, CLI_ACTOR_TELEGRAM_ID, utcnow())
            quiz_id, title = quiz.id, quiz.title
    except importing.QuizFileError as exc:
        for line, key, detail in exc.problems:
            print(_cli_text(config, f"cli_quiz_{key}", line=line, detail=detail), file=sys.stderr)
        return 1
    label = "cli_quiz_created" if created else "cli_quiz_updated"
    print(_cli_text(config, label, id=quiz_id, title=title, count=len(parsed.questions)))
    return 0


def _load_draw(config: Config, item_id: int) -> welfare.LotteryRecord | welfare.WelfareItem | None:
    """A drawn lottery's record, the item itself before its draw, or None when there is no such lottery."""
    db = Database(config.database_url, config.busy_timeout_ms)
    with db.reading() as session:
        try:
            return welfare.lottery_record(session, item_id)
        except NotFound:
            return None
        except DomainError:  # not drawn yet
            return session.get(welfare.WelfareItem, item_id)


def cmd_import_clubs(config: Config, path: Path) -> int:
    """Create or update clubs (TOML or CSV, by code) and name their leaders; nothing is stored unless all is good."""
    fmt = WELFARE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        print(_cli_text(config, "cli_clubs_bad_format", path=str(path)), file=sys.stderr)
        return EXIT_CONFIG
    text = _read_text(config, path, "cli_welfare_unreadable")
    units = [u.code for u in config.units]
    try:
        found = club_import.parse_clubs_file(text, fmt, units)
        _migrate(config)
        db = Database(config.database_url, config.busy_timeout_ms)
        with db.writing() as session:
            members.sync_units(session, ((u.code, u.name_zh, u.name_en) for u in config.units))
            result = club_import.import_clubs(session, found, units, utcnow())
    except club_import.ClubFileError as exc:
        for line, key, detail in exc.problems:
            print(_cli_text(config, f"cli_clubs_{key}", line=line, detail=detail), file=sys.stderr)
        return 1
    print(_cli_text(config, "cli_clubs_done", created=len(result.created), updated=len(result.updated)))
    return 0


def cmd_verify_draw(config: Config, item_id: int) -> int:
    """Re-run a lottery's draw from its published seed; exit 0 only if the seed and the winners both check out."""
    _migrate(config)
    found = _load_draw(config, item_id)
    if found is None:
        print(_cli_text(config, "cli_verify_unknown_item", item_id=item_id), file=sys.stderr)
        return 2

    def ids(values: list[int]) -> str:
        """Member ids as a list, or '(none)'."""
        return ", ".join(map(str, values)) or _cli_text(config, "cli_verify_none")

    print(_cli_text(config, "cli_verify_title", item_id=item_id, title=found.title))
    print(_cli_text(config, "cli_verify_seed_hash", seed_hash=found.seed_hash or ""))
    if isinstance(found, welfare.WelfareItem):
        print(_cli_text(config, "cli_verify_not_drawn"))
        return 1
    seed = found.seed or ""
    recomputed = sorted(welfare.verify_draw(seed, found.applicants, found.prizes)) if seed else []
    hash_ok = bool(seed) and welfare.seed_hash_of(seed) == found.seed_hash
    winners_ok = bool(seed) and recomputed == found.winners
    print(_cli_text(config, "cli_verify_seed", seed=seed))
    print(_cli_text(config, "cli_verify_prizes", count=found.prizes))
    print(_cli_text(config, "cli_verify_applicants", count=len(found.applicants), ids=ids(found.applicants)))
    print(_cli_text(config, "cli_verify_recomputed", ids=ids(recomputed)))
    print(_cli_text(config, "cli_verify_stored", ids=ids(found.winners)))
    print(_cli_text(config, "cli_verify_hash_ok" if hash_ok else "cli_verify_hash_bad"))
    print(_cli_text(config, "cli_verify_winners_ok" if winners_ok else "cli_verify_winners_bad"))
    print(_cli_text(config, "cli_verify_ok" if hash_ok and winners_ok else "cli_verify_bad"))
    return 0 if hash_ok and winners_ok else 1


CONFIG_HELP = "the configuration file (default: config.toml; the same as GONGSHE_CONFIG)"
RUN_EPILOG = """\
Configuration: config.toml (or --config / GONGSHE_CONFIG) and the environment (.env): every variable is listed
in .env.example. Exit codes: 0 stopped normally; 2 the configuration needs fixing (token, config.toml,
database URL); 3 the Bot API or the database cannot be reached now (worth retrying)."""
BACKUP_EPILOG = """\
SQLite: writes a copy named after the local time to backup.directory (config.toml) and keeps the newest
backup.keep copies. PostgreSQL: prints the pg_dump command to run instead and exits 2. How to restore either:
README, "Backups and restoring"."""


def cmd_import_survey(config: Config, path: Path) -> int:
    """Publish a survey from a TOML file (as a bureau admin): every problem with its line, nothing stored unless
    the whole file is good."""
    text = _read_text(config, path, "cli_file_unreadable")
    now = utcnow()
    try:
        draft = surveys.parse_survey_file(text, config.timezone, (u.code for u in config.units), now)
    except surveys.SurveyFileError as exc:
        for line, key, detail in exc.problems:
            print(_cli_text(config, f"cli_survey_{key}", line=line, detail=detail), file=sys.stderr)
        return 1
    _migrate(config)
    db = Database(config.database_url, config.busy_timeout_ms)
    actor = members.Actor(CLI_ACTOR_TELEGRAM_ID, None, True, frozenset({None}), frozenset())
    with db.writing() as session:
        members.sync_units(session, ((u.code, u.name_zh, u.name_en) for u in config.units))
        survey = surveys.store_survey(session, actor, draft, (u.code for u in config.units), now)
        survey_id = survey.id
    print(_cli_text(config, "cli_survey_done", id=survey_id, title=draft.title, questions=len(draft.questions)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command line; every subcommand takes --config, and the import commands describe their file format."""
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="bot.py", description="Gongshe (工社) union bot", epilog=RUN_EPILOG)
    parser.add_argument("--config", type=Path, default=None, help=CONFIG_HELP)
    parser.add_argument("--version", action="version", version=f"Gongshe {app_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help_text: str, **kw: object) -> argparse.ArgumentParser:
        """A subcommand that also takes --config (after its name), without overriding one given before it."""
        cmd = sub.add_parser(name, help=help_text, description=help_text, formatter_class=raw, **kw)
        cmd.add_argument("--config", type=Path, default=argparse.SUPPRESS, help=CONFIG_HELP)
        return cmd

    command("run", "run the bot (the default command)", epilog=RUN_EPILOG)
    command("migrate", "upgrade the database schema to the newest version")
    roster = command(
        "import-roster",
        "import the member roster from a CSV file (format below; also models/roster.py and the README)",
        epilog=models.roster.__doc__,
    )
    roster.add_argument("file", type=Path, help="the roster CSV file")
    roster.add_argument(
        "--remove-missing",
        action="store_true",
        help="also remove entries of the file's units that it no longer lists, erasing their members (shown first)",
    )
    roster.add_argument("--yes", action="store_true", help="with --remove-missing: really do it, not just show it")
    command("backup", "back up the SQLite database now (PostgreSQL: prints the pg_dump command)", epilog=BACKUP_EPILOG)
    welfare_file = command(
        "import-welfare",
        "create or update welfare items from a TOML or CSV file (format below; also models/welfare/importing.py)",
        epilog=models.welfare.importing.__doc__,
    )
    welfare_file.add_argument("file", type=Path, help="the welfare file (.toml or .csv)")
    welfare_file.add_argument("--dry-run", action="store_true", help="show what would change and write nothing")
    quiz_file = command(
        "import-quiz",
        "create a quiz and its question bank from a TOML file (format below; also models/quizzes/importing.py)",
        epilog=models.quizzes.importing.__doc__,
    )
    quiz_file.add_argument("file", type=Path, help="the quiz file (.toml)")
    club_file = command(
        "import-clubs",
        "create or update clubs from a TOML or CSV file (format below; also models/club_import.py)",
        epilog=models.club_import.__doc__,
    )
    club_file.add_argument("file", type=Path, help="the clubs file (.toml or .csv)")
    survey_file = command(
        "import-survey",
        "publish a survey from a TOML file (format below; also models/surveys/importing.py)",
        epilog=models.surveys.importing.__doc__,
    )
    survey_file.add_argument("file", type=Path, help="the survey file (.toml)")
    draw = command("verify-draw", "re-run a lottery's draw from its published seed and check it")
    draw.add_argument("item_id", type=int, help="the welfare item's id (shown by import-welfare and in the bot)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command line: run (default), migrate, import-roster FILE, backup, import-welfare FILE, verify-draw ITEM_ID."""
    args = build_parser().parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        message = Renderer().label(exc.language, exc.label, **exc.params) if exc.label else str(exc)
        print(message, file=sys.stderr)
        return EXIT_CONFIG
    setup_logging(config.timezone)
    try:
        if args.command == "migrate":
            _migrate(config)
            return 0
        if args.command == "import-roster":
            return cmd_import_roster(config, args.file, args.remove_missing, args.yes)
        if args.command == "backup":
            return cmd_backup(config)
        if args.command == "import-welfare":
            return cmd_import_welfare(config, args.file, args.dry_run)
        if args.command == "import-quiz":
            return cmd_import_quiz(config, args.file)
        if args.command == "import-clubs":
            return cmd_import_clubs(config, args.file)
        if args.command == "import-survey":
            return cmd_import_survey(config, args.file)
        if args.command == "verify-draw":
            return cmd_verify_draw(config, args.item_id)
        return cmd_run(config)
    except StartupError as exc:
        print(_cli_text(config, exc.label, **exc.params), file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
