"""Gongshe (工社): composition root. `python bot.py` runs the bot; see `python bot.py --help`.

Nothing happens at import: build_application(config) wires everything, main() reads the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import pkgutil
import signal
import sys
from datetime import datetime
from pathlib import Path
from types import ModuleType
from urllib.parse import urlsplit

from telegram import Update
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder, CallbackQueryHandler, CommandHandler, Defaults
from telegram.request import BaseRequest

import handlers
from config import Config, ConfigError, load_config
from handlers import menu
from handlers.base import Services, route_button
from handlers.inbox import DoneMarker, InboxPoller, InboxWebhook, replay_unprocessed
from messages import Renderer
from models import members, welfare
from models.clock import Clock, utcnow
from models.db import Database, ensure_sqlite_dir
from models.errors import DomainError, NotFound
from models.leader import Leadership
from models.members import RosterResult, RosterRow
from models.roster import RosterFileError, parse_roster_csv
from models.stock_cache import STOCK_CHANNEL
from models.welfare_import import WelfareFileError, import_items, parse_welfare_file
from scheduled import outbox as outbox_sender
from scheduled import runner
from scheduled.backup import backup_sqlite

log = logging.getLogger("gongshe")
# Modules in handlers/ that are shared machinery, not sections.
SHARED_MODULES = {"base", "callback_data", "inbox", "sending"}


def handler_modules() -> list[ModuleType]:
    """Every section module in handlers/ (each may declare COMMANDS, FLOWS and register(app))."""
    names = sorted(info.name for info in pkgutil.iter_modules(handlers.__path__) if info.name not in SHARED_MODULES)
    return [importlib.import_module(f"handlers.{name}") for name in names]


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

    modules = handler_modules()
    for module in modules:
        services.commands.extend(getattr(module, "COMMANDS", ()))
        services.flows.update(getattr(module, "FLOWS", {}))
        services.deep_links.update(getattr(module, "DEEP_LINKS", {}))
        services.admin_entries.extend(getattr(module, "ADMIN_ENTRIES", ()))
        for action, callback in getattr(module, "BUTTONS", {}).items():
            if action in services.buttons:
                raise ValueError(f"button {action.value} is handled twice ({module.__name__})")
            services.buttons[action] = callback
    for command in services.commands:
        app.add_handler(CommandHandler(command.name, command.callback))
    for module in modules:
        register = getattr(module, "register", None)
        if register is not None:
            register(app)
    app.add_handler(CallbackQueryHandler(route_button))
    menu.register_fallbacks(app)
    return app


async def on_startup(app: Application) -> None:
    """Sync units, publish the command lists, start the scheduler (PTB's post_init)."""
    services: Services = app.bot_data["services"]
    units = [(u.code, u.name_zh, u.name_en) for u in services.config.units]
    await services.db.write(members.sync_units, units)
    # PostgreSQL: another process's cancellation ends this process's cached "sold out" at once.
    services.db.listen(STOCK_CHANNEL, lambda payload: services.soldout.forget(_item_id(payload)))
    try:
        await menu.publish_commands(app)
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
    await app.bot_data["services"].replies.drain()
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


def cmd_run(config: Config) -> int:
    """Run the bot: long polling, or a webhook when bot.webhook_url is set."""
    if not config.token:
        print(_cli_text(config, "cli_no_token"), file=sys.stderr)
        return 2
    upgrade_database(config)
    asyncio.run(serve(build_application(config), config))
    return 0


async def serve(app: Application, config: Config) -> None:
    """Start the bot, handle what the inbox kept from before, receive updates until SIGINT/SIGTERM, then stop."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    marker: DoneMarker = app.bot_data["inbox_marker"]
    await app.initialize()
    try:
        await on_startup(app)
        await app.start()
        marker.start()
        await replay_unprocessed(app)
        receiver: InboxPoller | InboxWebhook
        if config.webhook_url:
            path = urlsplit(config.webhook_url).path
            receiver = InboxWebhook(app, config.webhook_listen, config.webhook_port, path, config.webhook_secret)
            receiver.start()
            await app.bot.set_webhook(
                config.webhook_url, secret_token=config.webhook_secret or None, allowed_updates=Update.ALL_TYPES
            )
        else:
            receiver = InboxPoller(app)
            receiver.start()
        mode = "webhook" if config.webhook_url else "polling"
        log.info("running: @%s, %s, %s database", app.bot.username, mode, app.bot_data["services"].db.dialect)
        await receiver.until(stopping)
        await receiver.stop()
        await app.stop()
        await marker.stop()
        await on_stop(app)
    finally:
        await app.shutdown()
        await on_shutdown(app)


def cmd_import_roster(config: Config, path: Path) -> int:
    """Import a roster CSV: every bad line is reported and nothing is stored unless all lines are good."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        print(_cli_text(config, "cli_file_unreadable", path=str(path)), file=sys.stderr)
        return 2
    try:
        rows = parse_roster_csv(text, (u.code for u in config.units), config.limits.employee_no_pattern)
    except RosterFileError as exc:
        for line, key, detail in exc.problems:
            print(_cli_text(config, f"cli_roster_{key}", line=line, detail=detail), file=sys.stderr)
        return 1
    upgrade_database(config)
    result = _store_roster(config, rows)
    print(_cli_text(config, "cli_roster_done", added=result.added, updated=result.updated, verified=result.verified))
    return 0


def _store_roster(config: Config, rows: list[RosterRow]) -> RosterResult:
    db = Database(config.database_url, config.busy_timeout_ms)
    with db.writing() as session:
        members.sync_units(session, ((u.code, u.name_zh, u.name_en) for u in config.units))
        return members.import_roster(session, rows)


def cmd_backup(config: Config) -> int:
    """Back up the SQLite database now."""
    path = Database(config.database_url).sqlite_path
    if path is None:
        print(_cli_text(config, "cli_backup_not_sqlite"), file=sys.stderr)
        return 2
    target = backup_sqlite(path, config.backup_dir, config.backup_keep)
    print(_cli_text(config, "cli_backup_done", path=str(target)))
    return 0


WELFARE_FORMATS = {".toml": "toml", ".csv": "csv"}
# Items imported from a file are created as if by a bureau admin; 0 is no Telegram account.
CLI_ACTOR_TELEGRAM_ID = 0


def cmd_import_welfare(config: Config, path: Path) -> int:
    """Import welfare items (TOML or CSV): every bad line is reported and nothing is stored unless all are good."""
    fmt = WELFARE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        print(_cli_text(config, "cli_welfare_bad_format", path=str(path)), file=sys.stderr)
        return 2
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        print(_cli_text(config, "cli_welfare_unreadable", path=str(path)), file=sys.stderr)
        return 2
    now = utcnow()
    try:
        drafts = parse_welfare_file(text, fmt, (u.code for u in config.units), config.timezone, now)
        upgrade_database(config)
        ids = _store_welfare(config, drafts, now)
    except WelfareFileError as exc:
        for line, key, detail in exc.problems:
            print(_cli_text(config, f"cli_welfare_{key}", line=line, detail=detail), file=sys.stderr)
        return 1
    print(_cli_text(config, "cli_welfare_done", count=len(ids), ids=", ".join(map(str, ids))))
    return 0


def _store_welfare(config: Config, drafts: list[welfare.ItemDraft], now: datetime) -> list[int]:
    """Store the parsed items in one transaction (all or nothing); returns their ids."""
    db = Database(config.database_url, config.busy_timeout_ms)
    with db.writing() as session:
        members.sync_units(session, ((u.code, u.name_zh, u.name_en) for u in config.units))
        return import_items(session, drafts, CLI_ACTOR_TELEGRAM_ID, now)


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


def cmd_verify_draw(config: Config, item_id: int) -> int:
    """Re-run a lottery's draw from its published seed; exit 0 only if the seed and the winners both check out."""
    upgrade_database(config)
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


def main(argv: list[str] | None = None) -> int:
    """Command line: run (default), migrate, import-roster FILE, backup, import-welfare FILE, verify-draw ITEM_ID."""
    parser = argparse.ArgumentParser(prog="bot.py", description="Gongshe (工社) union bot")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="run the bot (default)")
    sub.add_parser("migrate", help="upgrade the database schema to the newest version")
    roster = sub.add_parser(
        "import-roster", help="import a member roster CSV (unit_code,employee_no,name[,birth_year])"
    )
    roster.add_argument("file", type=Path)
    sub.add_parser("backup", help="back up the SQLite database now")
    welfare_file = sub.add_parser("import-welfare", help="import welfare items from a TOML or CSV file")
    welfare_file.add_argument("file", type=Path)
    draw = sub.add_parser("verify-draw", help="re-run a lottery's draw from its published seed and check it")
    draw.add_argument("item_id", type=int)
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        config = load_config()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.command == "migrate":
        upgrade_database(config)
        return 0
    if args.command == "import-roster":
        return cmd_import_roster(config, args.file)
    if args.command == "backup":
        return cmd_backup(config)
    if args.command == "import-welfare":
        return cmd_import_welfare(config, args.file)
    if args.command == "verify-draw":
        return cmd_verify_draw(config, args.item_id)
    return cmd_run(config)


if __name__ == "__main__":
    sys.exit(main())
