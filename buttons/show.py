"""Buttons of the show (我型我秀): browsing cards, likes, reports, posting, moderation, the weekly top posts."""

from __future__ import annotations

from dataclasses import dataclass

from buttons import Button


@dataclass(frozen=True)
class ShowHome(Button, prefix="show:home"):
    pass


@dataclass(frozen=True)
class Browse(Button, prefix="show:browse"):
    """The index-th card of the list, newest ("new") or most liked ("top") first."""

    order: str
    index: int


@dataclass(frozen=True)
class OpenPost(Button, prefix="show:post"):
    post_id: int


@dataclass(frozen=True)
class LikePost(Button, prefix="show:like"):
    """Like (on=1) or take the like back (on=0); the list position comes along to show the same card again."""

    post_id: int
    on: int
    order: str | None = None
    index: int | None = None


@dataclass(frozen=True)
class AlbumPhotos(Button, prefix="show:album"):
    post_id: int


@dataclass(frozen=True)
class ReportPost(Button, prefix="show:report"):
    post_id: int


@dataclass(frozen=True)
class AskDelete(Button, prefix="show:ask_del"):
    post_id: int


@dataclass(frozen=True)
class DeletePost(Button, prefix="show:delete"):
    post_id: int


@dataclass(frozen=True)
class NewPost(Button, prefix="show:new"):
    pass


@dataclass(frozen=True)
class PickCategory(Button, prefix="show:cat"):
    category: str


@dataclass(frozen=True)
class SkipText(Button, prefix="show:skip_text"):
    pass


@dataclass(frozen=True)
class PublishPost(Button, prefix="show:publish"):
    pass


@dataclass(frozen=True)
class MyPosts(Button, prefix="show:mine"):
    pass


@dataclass(frozen=True)
class Queue(Button, prefix="show:queue"):
    pass


@dataclass(frozen=True)
class ApprovePost(Button, prefix="show:approve"):
    post_id: int


@dataclass(frozen=True)
class RejectPost(Button, prefix="show:reject"):
    post_id: int


@dataclass(frozen=True)
class ToggleDigest(Button, prefix="show:digest"):
    pass
