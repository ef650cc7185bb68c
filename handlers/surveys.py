"""Surveys (在线调查): my surveys, answering one question per message, results with charts and CSV for cadres."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from buttons.surveys import (
    AddQuestion,
    Choose,
    DoneChoosing,
    DraftCard,
    EditSettings,
    EditSurvey,
    MySurveys,
    NewSurvey,
    OpenSurvey,
    PauseSurvey,
    PreviewSurvey,
    PreviousQuestion,
    PublishSurvey,
    RemoveQuestion,
    SkipQuestion,
    StartSurvey,
    SubmitSurvey,
    SurveyAdmin,
    SurveyCharts,
    SurveyCsv,
    SurveyResults,
)
from charts import bar_chart
from handlers import forms
from handlers.base import Command, Ctx, Need, Outgoing, Rows, Section, handler
from handlers.forms import Field, Form
from models import audience as audiences
from models import clubs, surveys
from models.audience import Audience
from models.errors import BadInput, DomainError, NotAllowed
from models.surveys import Kind, Phase, Question, Step, Survey, SurveyDraft, SurveyStatus
from models.surveys.tables import (
    INTRO_MAX,
    OPTIONS_MAX,
    POINTS_MAX,
    QUESTION_MAX,
    RATING_HIGH,
    RATING_LOW,
    TEXT_LIMIT_DEFAULT,
    TEXT_LIMIT_MAX,
    TITLE_MAX,
)

# Typed answers to free-text questions come through this flow (one per member; it names the survey).
FLOW = "survey"
# Questions per page of the results screen (worst case: 10 options and 3 texts each fit 4,096 characters).
RESULTS_PAGE = 3
RULE = "survey_answer"
CHOICES_PER_ROW = 1


def _local(ctx: Ctx, at: datetime | None) -> datetime | None:
    return at.astimezone(ctx.config.timezone) if at is not None else None


def _survey_view(ctx: Ctx, survey: Survey) -> dict[str, Any]:
    return {
        "id": survey.id,
        "title": survey.title,
        "intro": survey.intro,
        "questions": len(survey.questions),
        "anonymous": survey.anonymous,
        "points": survey.points,
        "results_public": survey.results_public,
        "opens_at": _local(ctx, survey.opens_at),
        "closes_at": _local(ctx, survey.closes_at),
        "phase": surveys.phase_of(survey, ctx.now).value,
    }


# --- members ---------------------------------------------------------------------------------------


@handler(needs=Need.VERIFIED)
def show_list(ctx: Ctx) -> None:
    """/surveys: open surveys for me (to answer or resume) and those I have answered."""
    listed = surveys.member_surveys(ctx.session, ctx.member, ctx.now, ctx.today)
    keyboard = [
        [ctx.button("survey_item", OpenSurvey(e.survey.id), title=e.survey.title)]
        for e in listed
        if not e.answered or (e.phase == Phase.CLOSED and e.survey.results_public)
    ]
    entries = [_survey_view(ctx, e.survey) | {"answered": e.answered, "started": e.started} for e in listed]
    ctx.show("surveys/list", keyboard, surveys=entries)


@handler(needs=Need.VERIFIED)
def show_card(ctx: Ctx) -> None:
    """Button (also the invitation's): a survey's intro with Start, Resume or its results."""
    found = surveys.survey_card(ctx.session, ctx.member, ctx.pressed(OpenSurvey).survey_id, ctx.now, ctx.today)
    survey, rows = found.survey, []
    if found.phase == Phase.OPEN and not found.answered:
        key = "survey_resume" if found.started else "survey_start"
        rows.append([ctx.button(key, StartSurvey(survey.id))])
    if found.phase == Phase.CLOSED and found.answered and survey.results_public:
        rows.append([ctx.button("survey_results", SurveyResults(survey.id))])
    rows.append([ctx.button("survey_list", MySurveys())])
    ctx.show("surveys/card", rows, survey=_survey_view(ctx, survey), answered=found.answered, started=found.started)


def _answer_text(question: surveys.Question, value: Any) -> str | None:
    """An answer as the member reads it back (None: not answered)."""
    if value is None or value == []:
        return None
    if question.kind == Kind.SINGLE:
        return question.options[int(value)]
    if question.kind == Kind.MULTI:
        return "、".join(question.options[int(v)] for v in value)
    return str(value)


def _question_keyboard(ctx: Ctx, step: Step, index: int) -> Rows:
    survey, question = step.survey, step.survey.question_list[index]
    value = step.progress.answers.get(str(index))
    rows: Rows = []
    if question.kind in (Kind.SINGLE, Kind.MULTI):
        ticked = set(value or []) if question.kind == Kind.MULTI else {value}
        for i, option in enumerate(question.options):
            key = "survey_ticked" if i in ticked else "survey_option"
            rows.append([ctx.button(key, Choose(survey.id, index, i), label=option)])
        if question.kind == Kind.MULTI:
            rows.append([ctx.button("survey_done", DoneChoosing(survey.id, index))])
    elif question.kind == Kind.RATING:
        rows.append(
            [
                ctx.button("survey_ticked" if value == r else "survey_option", Choose(survey.id, index, r), label=r)
                for r in range(RATING_LOW, RATING_HIGH + 1)
            ]
        )
    nav = []
    if index > 0:
        nav.append(ctx.button("back", PreviousQuestion(survey.id, index)))
    if not question.required:
        nav.append(ctx.button("skip", SkipQuestion(survey.id, index)))
    nav.append(ctx.button("survey_pause", PauseSurvey(survey.id)))
    return [*rows, nav]


def _show_step(ctx: Ctx, step: Step) -> None:
    """The question I am on (with my answer so far), or the summary before Submit."""
    survey = step.survey
    if survey.anonymous:
        # The update that carried an answer is not kept in the inbox with my id (models/inbox.py).
        surveys.forget_update(ctx.session, ctx.update.update_id)
    questions = survey.question_list
    if step.question is None:
        answers = [
            {"text": q.text, "answer": _answer_text(q, step.progress.answers.get(str(i))), "required": q.required}
            for i, q in enumerate(questions)
        ]
        missing = surveys.missing_required(survey, step.progress.answers)
        rows = [] if missing else [[ctx.button("survey_submit", SubmitSurvey(survey.id))]]
        rows.append(
            [
                ctx.button("back", PreviousQuestion(survey.id, len(questions))),
                ctx.button("survey_pause", PauseSurvey(survey.id)),
            ]
        )
        ctx.show("surveys/summary", rows, survey=_survey_view(ctx, survey), answers=answers, missing=missing)
        return
    index = step.question
    question = questions[index]
    current = step.progress.answers.get(str(index))
    ctx.show(
        "surveys/question",
        _question_keyboard(ctx, step, index),
        title=survey.title,
        number=index + 1,
        total=len(questions),
        text=question.text,
        kind=question.kind.value,
        required=question.required,
        max_choices=question.max_choices,
        max_length=question.max_length,
        answer=_answer_text(question, current),
    )


@handler(write=True, needs=Need.VERIFIED)
def start_survey(ctx: Ctx) -> None:
    """Button: begin, or resume at the question where I paused (kept in the database)."""
    step = surveys.start(ctx.session, ctx.member, ctx.pressed(StartSurvey).survey_id, ctx.now, ctx.today)
    # Typed text goes to this survey from now on (free-text answers).
    ctx.set_flow(FLOW, "answer", {"survey_id": step.survey.id})
    _show_step(ctx, step)


@handler(write=True, needs=Need.VERIFIED)
def choose(ctx: Ctx) -> None:
    """Button: an option, a tick (multiple choice) or a rating for the question being asked."""
    press = ctx.pressed(Choose)
    _show_step(ctx, surveys.choose(ctx.session, ctx.member, press.survey_id, press.question, press.value, ctx.now))


@handler(write=True, needs=Need.VERIFIED)
def done_choosing(ctx: Ctx) -> None:
    """Button: the ticks of a multiple-choice question are complete."""
    press = ctx.pressed(DoneChoosing)
    _show_step(ctx, surveys.confirm(ctx.session, ctx.member, press.survey_id, press.question, ctx.now))


@handler(write=True, needs=Need.VERIFIED)
def skip_question(ctx: Ctx) -> None:
    """Button: leave an optional question unanswered."""
    press = ctx.pressed(SkipQuestion)
    _show_step(ctx, surveys.skip(ctx.session, ctx.member, press.survey_id, press.question, ctx.now))


@handler(write=True, needs=Need.VERIFIED)
def previous_question(ctx: Ctx) -> None:
    """Button: back to the previous question, to change its answer."""
    press = ctx.pressed(PreviousQuestion)
    _show_step(ctx, surveys.back(ctx.session, ctx.member, press.survey_id, press.position, ctx.now))


def typed_answer(ctx: Ctx, text: str) -> None:
    """Typed text while answering: the answer to a free-text question."""
    if not ctx.actor.verified:
        raise DomainError("not_registered")
    state = ctx.section_flow(FLOW)
    survey_id = int(state.data["survey_id"]) if state is not None else 0
    _show_step(ctx, surveys.type_answer(ctx.session, ctx.member, survey_id, text, ctx.now))


@handler(write=True, needs=Need.VERIFIED)
def pause_survey(ctx: Ctx) -> None:
    """Button: stop for now; /surveys resumes at the same question (after a restart too)."""
    survey = surveys.pause(ctx.session, ctx.member, ctx.pressed(PauseSurvey).survey_id, ctx.now)
    ctx.clear_flow(FLOW)
    ctx.show("surveys/paused", [[ctx.button("survey_list", MySurveys())]], title=survey.title)


@handler(write=True, needs=Need.VERIFIED)
def submit_survey(ctx: Ctx) -> None:
    """Button: send my answers (once; points once)."""
    survey_id = ctx.pressed(SubmitSurvey).survey_id
    rule = ctx.config.rules[RULE]
    settings = ctx.config.surveys
    done = surveys.submit(ctx.session, ctx.member, survey_id, ctx.now, ctx.today, rule, settings.anonymous_batch)
    ctx.clear_flow(FLOW)
    survey = ctx.session.get(Survey, survey_id)
    if done.preview:
        ctx.show("surveys/preview_done", [[ctx.button("survey_back_draft", DraftCard(survey_id))]], title=survey.title)
        return
    ctx.show(
        "surveys/submitted",
        [[ctx.button("survey_list", MySurveys())]],
        survey=_survey_view(ctx, survey),
        points=done.points,
    )


# --- results (cadres; respondents too when the survey allows, after it closes) ---------------------


def _readable_survey(ctx: Ctx, survey_id: int) -> Survey:
    """A survey whose results I may read: a cadre within their scope, or a respondent of a closed public one."""
    if ctx.actor.is_cadre:
        return surveys.managed_survey(ctx.session, ctx.actor, survey_id)
    if ctx.actor.member is None:
        raise NotAllowed()
    found = surveys.survey_card(ctx.session, ctx.member, survey_id, ctx.now, ctx.today)
    if not (found.answered and found.survey.results_public and found.phase == Phase.CLOSED):
        raise NotAllowed()
    return found.survey


def _unit_name(ctx: Ctx, code: str | None) -> str:
    unit = ctx.config.unit(code) if code else None
    return unit.name(ctx.locale) if unit else (code or "—")


@handler(needs=Need.CADRE)
def admin_list(ctx: Ctx) -> None:
    """/admin → Surveys: the surveys I manage, with how many answered."""
    found = surveys.cadre_surveys(ctx.session, ctx.actor)
    entries = [_survey_view(ctx, s) | {"respondents": surveys.respondents(ctx.session, s.id)} for s in found]
    keyboard = [
        [
            ctx.button(
                "survey_item", DraftCard(s.id) if s.status == SurveyStatus.DRAFT else SurveyResults(s.id), title=s.title
            )
        ]
        for s in found
    ]
    keyboard.append([ctx.button("survey_new", NewSurvey())])
    ctx.show("surveys/admin_list", keyboard, surveys=entries)


@handler(needs=Need.ANYONE)
def show_results(ctx: Ctx) -> None:
    """Button: results, page 0 the overview (response rate per unit, age bands), then a few questions a page."""
    press = ctx.pressed(SurveyResults)
    survey = _readable_survey(ctx, press.survey_id)
    settings = ctx.config.surveys
    results = surveys.survey_results(ctx.session, survey, ctx.today, settings.min_group)
    pages = 1 + -(-len(results.questions) // RESULTS_PAGE)
    page = min(press.page or 0, pages - 1)
    shown = results.questions[(page - 1) * RESULTS_PAGE : page * RESULTS_PAGE] if page else []
    questions = [
        {
            "number": q.number,
            "text": q.question.text,
            "kind": q.question.kind.value,
            "answered": q.answered,
            "bars": [{"label": b.label, "count": b.count, "percent": b.percent} for b in q.bars],
            "mean": q.mean,
            "texts": q.texts,
            "more_texts": q.more_texts,
        }
        for q in shown
    ]
    rates = [
        {"unit": _unit_name(ctx, r.unit_code), "audience": r.audience, "responded": r.responded, "percent": r.percent}
        for r in results.rates
    ]
    bands = [{"band": g.key, "respondents": g.respondents} for g in results.groups if g.kind == "age"]
    keyboard = ctx.pager(lambda p: SurveyResults(survey.id, p), page=page, has_next=page + 1 < pages)
    keyboard.append([ctx.button("survey_charts", SurveyCharts(survey.id))])
    if ctx.actor.is_cadre:
        keyboard[-1].append(ctx.button("survey_csv", SurveyCsv(survey.id)))
        if surveys.phase_of(survey, ctx.now) == Phase.UPCOMING:
            keyboard.append([ctx.button("survey_edit", EditSurvey(survey.id))])
        keyboard.append([ctx.button("survey_admin", SurveyAdmin())])
    ctx.show(
        "surveys/results",
        keyboard,
        survey=_survey_view(ctx, survey),
        page=page,
        pages=pages,
        responses=results.responses,
        respondents=results.respondents,
        waiting=results.waiting,
        rates=rates if page == 0 else [],
        bands=bands if page == 0 else [],
        min_group=settings.min_group,
        questions=questions,
    )


@handler(needs=Need.ANYONE)
def send_charts(ctx: Ctx) -> None:
    """Button: one bar chart image per choice or rating question."""
    survey = _readable_survey(ctx, ctx.pressed(SurveyCharts).survey_id)
    results = surveys.survey_results(ctx.session, survey, ctx.today, ctx.config.surveys.min_group, breakdowns=False)
    for q in results.questions:
        if q.question.kind == Kind.TEXT:
            continue
        png = bar_chart(q.question.text, [b.label for b in q.bars], [b.count for b in q.bars])
        caption = ctx.t("surveys/chart_caption", title=survey.title, number=q.number, answered=q.answered, mean=q.mean)
        ctx.replies.append(Outgoing(ctx.chat_id, caption, photo=png))


@handler(needs=Need.CADRE)
def send_csv(ctx: Ctx) -> None:
    """Button: every response as CSV (anonymous: no member, no time; small groups hidden)."""
    survey = surveys.managed_survey(ctx.session, ctx.actor, ctx.pressed(SurveyCsv).survey_id)
    results = surveys.survey_results(ctx.session, survey, ctx.today, ctx.config.surveys.min_group)
    keys = ("response", "name", "employee_no", "submitted_at", "unit", "age_band", "group", "respondents")
    headers = {k: ctx.label(f"survey_csv_{k}") for k in (*keys, "question", "answer", "count", "hidden")}
    content = surveys.export_csv(ctx.session, survey, results, headers)
    ctx.send_document(
        content, f"survey-{survey.id}.csv", "surveys/csv_caption", title=survey.title, responses=results.responses
    )


# --- building a survey in chat (cadres) --------------------------------------------------------------

NEW_FORM = "survey_new"
QUESTION_FORM = "survey_question"
# The form engine's messages: errors/survey_form_text_empty, survey_form_number_range, survey_form_time_past, ...
ERRORS = "survey_form"
YES, NO = "yes", "no"
OPTION_SEPARATORS = ("\n", "/", "／", "|", "；", ";")


def _moment(ctx: Ctx, stored: str) -> datetime:
    return datetime.fromisoformat(stored)


def _yes_no(ctx: Ctx, _data: dict[str, Any]) -> list[tuple[str, str]]:
    return [(ctx.label("survey_yes"), YES), (ctx.label("survey_no"), NO)]


def _kinds(ctx: Ctx, _data: dict[str, Any]) -> list[tuple[str, str]]:
    return [(ctx.label(f"survey_kind_{k.value}"), k.value) for k in Kind]


def _options(_ctx: Ctx, text: str, _data: dict[str, Any]) -> list[str]:
    """Options typed one per line (or separated by "/")."""
    for separator in OPTION_SEPARATORS[1:]:
        text = text.replace(separator, "\n")
    options = [o.strip() for o in text.split("\n") if o.strip()]
    question = Question("?", Kind.SINGLE, tuple(options))
    if surveys.manage.check_question(question):
        raise BadInput("survey_form_options", max=OPTIONS_MAX)
    return options


def _is_choice(data: dict[str, Any]) -> bool:
    return data.get("kind") in (Kind.SINGLE, Kind.MULTI)


def _is_multi(data: dict[str, Any]) -> bool:
    return data.get("kind") == Kind.MULTI


def _is_text(data: dict[str, Any]) -> bool:
    return data.get("kind") == Kind.TEXT


ALL, UNITS, CLUBS = "all", "units", "clubs"
# Club names listed on the draft card (the rest counted).
CLUBS_SHOWN = 10


def _scope_units(ctx: Ctx) -> list[str]:
    """The units this cadre serves (every unit for a bureau cadre or an admin), in the config's order."""
    return [u.code for u in ctx.config.units if ctx.actor.can_manage(u.code)]


def _audiences(ctx: Ctx, _data: dict[str, Any]) -> list[tuple[str, str]]:
    """Whole scope, chosen units, or clubs (offered only when the cadre has clubs in scope)."""
    offered = [ALL, UNITS] + ([CLUBS] if clubs.managed_clubs(ctx.session, ctx.actor) else [])
    return [(ctx.label(f"survey_audience_{key}"), key) for key in offered]


def _unit_choices(ctx: Ctx, _data: dict[str, Any]) -> list[tuple[str, str]]:
    return [(ctx.config.unit(code).name(ctx.locale), code) for code in _scope_units(ctx)]


def _club_choices(ctx: Ctx, _data: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c.name, str(c.id)) for c in clubs.managed_clubs(ctx.session, ctx.actor)]


def _max_choices(ctx: Ctx, text: str, data: dict[str, Any]) -> int:
    """At most how many options a member may tick: 1 up to the number of options."""
    options = len(data.get("options") or ())
    if not re.fullmatch(r"[0-9]{1,3}", text) or not 1 <= int(text) <= options:
        raise BadInput("survey_form_max_choices", options=options)
    return int(text)


def _points_max(ctx: Ctx) -> int:
    """The most a survey may pay: the survey_answer rule's daily cap (when it has one), at most POINTS_MAX."""
    cap = ctx.config.rules[RULE].daily_cap
    return min(POINTS_MAX, cap) if cap else POINTS_MAX


def _points(ctx: Ctx, text: str, data: dict[str, Any]) -> int:
    return forms.number_answer(ERRORS, 0, _points_max(ctx))(ctx, text, data)


def _audience_of(data: dict[str, Any]) -> Audience:
    chosen = data.get("audience")
    return Audience(
        units=tuple(data.get("units") or ()) if chosen == UNITS else (),
        under_35=data.get("under_35") == YES,
        clubs=tuple(int(c) for c in data.get("clubs") or ()) if chosen == CLUBS else (),
    )


def _create_draft(ctx: Ctx, data: dict[str, Any]) -> None:
    """The survey's settings are in: keep it as a draft and ask its first question."""
    draft = SurveyDraft(
        title=data["title"],
        intro=data.get("intro") or "",
        opens_at=_moment(ctx, data["opens_at"]),
        closes_at=_moment(ctx, data["closes_at"]),
        questions=(),
        audience=_audience_of(data),
        anonymous=data["anonymous"] == YES,
        points=data["points"],
    )
    units = [u.code for u in ctx.config.units]
    if data.get("survey_id"):
        # Edit settings of an existing draft: its questions stay.
        survey = surveys.update_draft(ctx.session, ctx.actor, int(data["survey_id"]), draft, units, ctx.now)
        _draft_card(ctx, survey, edit=False)
        return
    survey = surveys.create_draft(ctx.session, ctx.actor, draft, units, ctx.now)
    forms.start_form(ctx, QUESTION_FORM, {"survey_id": survey.id})


def _add_question(ctx: Ctx, data: dict[str, Any]) -> None:
    """A question is complete: add it to the draft and show the draft."""
    kind = Kind(data["kind"])
    question = Question(
        text=data["text"],
        kind=kind,
        options=tuple(data.get("options") or ()),
        required=data["required"] == YES,
        max_choices=data.get("max_choices") if kind == Kind.MULTI else None,
        max_length=(data.get("max_length") or TEXT_LIMIT_DEFAULT) if kind == Kind.TEXT else TEXT_LIMIT_DEFAULT,
    )
    survey = surveys.add_question(ctx.session, ctx.actor, int(data["survey_id"]), question)
    _draft_card(ctx, survey, edit=False)


forms.register_form(
    Form(
        NEW_FORM,
        (
            Field("title", parse=forms.text_answer(ERRORS, TITLE_MAX)),
            Field("intro", parse=forms.text_answer(ERRORS, INTRO_MAX), optional=True),
            Field("audience", choices=_audiences),
            Field("units", choices=_unit_choices, multiple=True, when=lambda d: d.get("audience") == UNITS),
            Field("clubs", choices=_club_choices, multiple=True, when=lambda d: d.get("audience") == CLUBS),
            Field("under_35", choices=_yes_no),
            Field("anonymous", choices=_yes_no),
            Field("opens_at", parse=forms.time_answer(ERRORS, None, _moment)),
            Field("closes_at", parse=forms.time_answer(ERRORS, "opens_at", _moment)),
            Field("points", parse=_points),
        ),
        _create_draft,
    )
)
forms.register_form(
    Form(
        QUESTION_FORM,
        (
            Field("text", parse=forms.text_answer(ERRORS, QUESTION_MAX)),
            Field("kind", choices=_kinds),
            Field("options", parse=_options, when=_is_choice),
            Field("max_choices", parse=_max_choices, optional=True, when=_is_multi),
            Field("max_length", parse=forms.number_answer(ERRORS, 1, TEXT_LIMIT_MAX), optional=True, when=_is_text),
            Field("required", choices=_yes_no),
        ),
        _add_question,
    )
)


def _audience_view(ctx: Ctx, survey: Survey) -> dict[str, Any]:
    """Who a survey is for, and how many members that reaches today (shown before publishing)."""
    target = survey.target
    club_names = [clubs.get_club(ctx.session, c).name for c in target.clubs[:CLUBS_SHOWN]]
    return {
        "units": [_unit_name(ctx, u) for u in target.units],
        "clubs": club_names,
        "more_clubs": max(0, len(target.clubs) - CLUBS_SHOWN),
        "under_35": target.under_35,
        "reach": audiences.count(ctx.session, target, ctx.today).members,
    }


def _draft_card(ctx: Ctx, survey: Survey, *, edit: bool) -> None:
    rows = [
        [ctx.button("survey_add_question", AddQuestion(survey.id))],
        [ctx.button("survey_settings", EditSettings(survey.id))]
        + ([ctx.button("survey_remove_question", RemoveQuestion(survey.id))] if survey.questions else []),
        [
            ctx.button("survey_preview", PreviewSurvey(survey.id)),
            ctx.button("survey_publish", PublishSurvey(survey.id)),
        ],
        [ctx.button("survey_admin", SurveyAdmin())],
    ]
    questions = [
        {
            "text": q.text,
            "kind": q.kind.value,
            "options": list(q.options),
            "required": q.required,
            "max_choices": q.max_choices,
            "max_length": q.max_length if q.kind == Kind.TEXT else None,
        }
        for q in survey.question_list
    ]
    text = ctx.t(
        "surveys/draft", survey=_survey_view(ctx, survey), items=questions, audience=_audience_view(ctx, survey)
    )
    ctx.say(text, rows, edit=edit)


@handler(write=True, needs=Need.CADRE)
def new_survey(ctx: Ctx) -> None:
    """Button: build a survey step by step (title, intro, anonymity, times, points, then its questions)."""
    ctx.actor.require_cadre()
    forms.start_form(ctx, NEW_FORM, {"points_max": _points_max(ctx)})


@handler(needs=Need.CADRE)
def show_draft(ctx: Ctx) -> None:
    """Button: a draft with its questions, and Add question, Preview and Publish."""
    _draft_card(ctx, surveys.draft_survey(ctx.session, ctx.actor, ctx.pressed(DraftCard).survey_id), edit=True)


@handler(write=True, needs=Need.CADRE)
def add_question(ctx: Ctx) -> None:
    """Button: one more question for a draft."""
    survey = surveys.draft_survey(ctx.session, ctx.actor, ctx.pressed(AddQuestion).survey_id)
    forms.start_form(ctx, QUESTION_FORM, {"survey_id": survey.id})


@handler(write=True, needs=Need.CADRE)
def edit_settings(ctx: Ctx) -> None:
    """Button: ask a draft's settings again (title, intro, audience, anonymity, times, points)."""
    survey = surveys.draft_survey(ctx.session, ctx.actor, ctx.pressed(EditSettings).survey_id)
    forms.start_form(ctx, NEW_FORM, {"survey_id": survey.id, "points_max": _points_max(ctx)})


@handler(write=True, needs=Need.CADRE)
def remove_question(ctx: Ctx) -> None:
    """Button: take the draft's last question off."""
    survey = surveys.remove_last_question(ctx.session, ctx.actor, ctx.pressed(RemoveQuestion).survey_id)
    _draft_card(ctx, survey, edit=True)


@handler(write=True, needs=Need.CADRE)
def preview_survey(ctx: Ctx) -> None:
    """Button: answer the draft as a member would; nothing is kept."""
    survey = surveys.draft_survey(ctx.session, ctx.actor, ctx.pressed(PreviewSurvey).survey_id)
    if ctx.actor.member is None or not survey.questions:
        raise BadInput("survey_preview_needs")
    step = surveys.start_preview(ctx.session, ctx.member, survey, ctx.now, ctx.today)
    ctx.set_flow(FLOW, "answer", {"survey_id": survey.id})
    _show_step(ctx, step)


@handler(write=True, needs=Need.CADRE)
def publish_survey(ctx: Ctx) -> None:
    """Button: publish the draft; it opens at its time and its audience is told then."""
    survey = surveys.publish(ctx.session, ctx.actor, ctx.pressed(PublishSurvey).survey_id, ctx.now)
    ctx.show(
        "surveys/published",
        [[ctx.button("survey_edit", EditSurvey(survey.id))], [ctx.button("survey_admin", SurveyAdmin())]],
        survey=_survey_view(ctx, survey),
        audience=_audience_view(ctx, survey),
    )


@handler(write=True, needs=Need.CADRE)
def edit_survey(ctx: Ctx) -> None:
    """Button: a published survey that has not opened yet goes back to a draft, to be edited and published again."""
    _draft_card(ctx, surveys.unpublish(ctx.session, ctx.actor, ctx.pressed(EditSurvey).survey_id, ctx.now), edit=True)


SECTION = Section(
    "surveys",
    commands=(Command("surveys", show_list, menu_order=40),),
    buttons={
        MySurveys: show_list,
        OpenSurvey: show_card,
        StartSurvey: start_survey,
        Choose: choose,
        DoneChoosing: done_choosing,
        SkipQuestion: skip_question,
        PreviousQuestion: previous_question,
        PauseSurvey: pause_survey,
        SubmitSurvey: submit_survey,
        SurveyAdmin: admin_list,
        SurveyResults: show_results,
        SurveyCharts: send_charts,
        SurveyCsv: send_csv,
        NewSurvey: new_survey,
        DraftCard: show_draft,
        AddQuestion: add_question,
        PreviewSurvey: preview_survey,
        PublishSurvey: publish_survey,
        EditSurvey: edit_survey,
        EditSettings: edit_settings,
        RemoveQuestion: remove_question,
    },
    flows={FLOW: typed_answer, NEW_FORM: forms.answer_text, QUESTION_FORM: forms.answer_text},
    admin_entries=(("survey_admin", SurveyAdmin()),),
)
