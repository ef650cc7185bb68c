"""Gongshe (工社): composition root. `python bot.py` runs the bot; see `python bot.py --help`.

Nothing happens at import: build_application(config) wires everything, main() reads the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import pkgutil
import sys
from pathlib import Path
from types import ModuleType

from telegram import Update
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder, CommandHandler, Defaults
from telegram.request import BaseRequest

import handlers
from config import Config, ConfigError, load_config
from handlers import menu
from handlers.base import Services
from messages import Renderer
from models import members
from models.db import Database
from models.members import RosterResult, RosterRow
from models.roster import RosterFileError, parse_roster_csv
from scheduled import runner
from scheduled.backup import backup_sqlite

log = logging.getLogger("gongshe")
# Modules in handlers/ that are shared machinery, not sections.
SHARED_MODULES = {"base", "callback_data"}


def handler_modules() -> list[ModuleType]:
    """Every section module in handlers/ (each may declare COMMANDS, FLOWS and register(app))."""
    names = sorted(info.name for info in pkgutil.iter_modules(handlers.__path__) if info.name not in SHARED_MODULES)
    return [importlib.import_module(f"handlers.{name}") for name in names]


def build_application(
    config: Config, *, request: BaseRequest | None = None, db: Database | None = None, scheduler: bool = True
) -> Application:
    """The whole bot: handlers, services, start-up hooks. `request` replaces the network (tests)."""
    services = Services(config, db or Database(config.database_url, config.busy_timeout_ms), Renderer())
    builder = (
        ApplicationBuilder()
        .token(config.token)
        .base_url(config.api_base_url)
        .base_file_url(config.api_base_url.removesuffix("/bot") + "/file/bot")
        .defaults(Defaults(parse_mode=ParseMode.HTML, tzinfo=config.timezone))
        .concurrent_updates(config.concurrent_updates)
        .rate_limiter(AIORateLimiter(max_retries=0))
        .post_init(on_startup)
        .post_shutdown(on_shutdown)
    )
    if request is not None:
        builder = builder.request(request).get_updates_request(request)
    app = builder.build()
    app.bot_data["services"] = services
    app.bot_data["start_scheduler"] = scheduler

    modules = handler_modules()
    for module in modules:
        services.commands.extend(getattr(module, "COMMANDS", ()))
        services.flows.update(getattr(module, "FLOWS", {}))
    for command in services.commands:
        app.add_handler(CommandHandler(command.name, command.callback))
    for module in modules:
        register = getattr(module, "register", None)
        if register is not None:
            register(app)
    menu.register_fallbacks(app)
    return app


async def on_startup(app: Application) -> None:
    """Sync units, publish the command lists, start the scheduler (PTB's post_init)."""
    services: Services = app.bot_data["services"]
    async with services.db.write() as session:
        await members.sync_units(session, ((u.code, u.name_zh, u.name_en) for u in services.config.units))
    try:
        await menu.publish_commands(app)
    except TelegramError as exc:
        log.warning("could not publish the command list: %s", exc)
    if app.bot_data.get("start_scheduler") and app.job_queue is not None:
        specs = runner.discover()
        await runner.ensure_tasks(services, specs)
        runner.start(app, services)


async def on_shutdown(app: Application) -> None:
    """Close the database pools."""
    await app.bot_data["services"].db.dispose()


def upgrade_database(config: Config) -> None:
    """Apply every alembic migration up to head."""
    from alembic import command
    from alembic.config import Config as AlembicConfig

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
    app = build_application(config)
    if config.webhook_url:
        app.run_webhook(
            listen=config.webhook_listen,
            port=config.webhook_port,
            webhook_url=config.webhook_url,
            secret_token=config.webhook_secret or None,
            allowed_updates=Update.ALL_TYPES,
        )
    else:
        app.run_polling(allowed_updates=Update.ALL_TYPES)
    return 0


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
    result = asyncio.run(_store_roster(config, rows))
    print(_cli_text(config, "cli_roster_done", added=result.added, updated=result.updated, verified=result.verified))
    return 0


async def _store_roster(config: Config, rows: list[RosterRow]) -> RosterResult:
    db = Database(config.database_url, config.busy_timeout_ms)
    try:
        async with db.write() as session:
            await members.sync_units(session, ((u.code, u.name_zh, u.name_en) for u in config.units))
            return await members.import_roster(session, rows)
    finally:
        await db.dispose()


def cmd_backup(config: Config) -> int:
    """Back up the SQLite database now."""
    path = Database(config.database_url).sqlite_path
    if path is None:
        print(_cli_text(config, "cli_backup_not_sqlite"), file=sys.stderr)
        return 2
    target = backup_sqlite(path, config.backup_dir, config.backup_keep)
    print(_cli_text(config, "cli_backup_done", path=str(target)))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command line: run (default), migrate, import-roster FILE, backup."""
    parser = argparse.ArgumentParser(prog="bot.py", description="Gongshe (工社) union bot")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="run the bot (default)")
    sub.add_parser("migrate", help="upgrade the database schema to the newest version")
    roster = sub.add_parser(
        "import-roster", help="import a member roster CSV (unit_code,employee_no,name[,birth_year])"
    )
    roster.add_argument("file", type=Path)
    sub.add_parser("backup", help="back up the SQLite database now")
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
    return cmd_run(config)


if __name__ == "__main__":
    sys.exit(main())
