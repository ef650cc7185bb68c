"""The one global error handler: a reference id in the log, in the chat, and in the ops chat."""

from __future__ import annotations

import logging
import uuid

from telegram import Update
from telegram.error import Forbidden, NetworkError, RetryAfter, TimedOut
from telegram.ext import Application, ContextTypes

from handlers.base import Outgoing, deliver, services_of
from messages import pick_locale

log = logging.getLogger(__name__)


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the failure with a reference id, tell the user that id, and notify the ops chat."""
    error = context.error
    if isinstance(error, (TimedOut, NetworkError, RetryAfter, Forbidden)) and not isinstance(update, Update):
        # Polling hiccups: PTB retries by itself; nothing to tell anyone.
        log.warning("network trouble outside an update: %s", type(error).__name__)
        return
    ref = uuid.uuid4().hex[:8]
    log.error("unhandled error ref=%s", ref, exc_info=error)
    services = services_of(context)
    if isinstance(update, Update) and update.effective_chat is not None:
        user = update.effective_user
        locale = pick_locale(user.language_code if user else None)
        text = services.renderer.render(locale, "errors/unexpected", ref=ref)
        await deliver(context.application, Outgoing(update.effective_chat.id, text))
    ops = services.config.ops_chat_id
    if ops:
        text = services.renderer.render(
            services.config.default_language, "errors/ops_report", ref=ref, kind=type(error).__name__
        )
        await deliver(context.application, Outgoing(ops, text))


def register(app: Application) -> None:
    """Install the error handler."""
    app.add_error_handler(on_error)
