"""Buttons of surveys (在线调查): the list, answering (each press names its survey and question), results."""

from __future__ import annotations

from dataclasses import dataclass

from buttons import Button


@dataclass(frozen=True)
class MySurveys(Button, prefix="sv:list"):
    pass


@dataclass(frozen=True)
class OpenSurvey(Button, prefix="sv:open"):
    """A survey's card (intro, Start or Resume); also the invitation's button."""

    survey_id: int


@dataclass(frozen=True)
class StartSurvey(Button, prefix="sv:start"):
    survey_id: int


@dataclass(frozen=True)
class Choose(Button, prefix="sv:pick"):
    """An option (its index) or a rating (1-5) of question `question`; a press for another question is refused."""

    survey_id: int
    question: int
    value: int


@dataclass(frozen=True)
class DoneChoosing(Button, prefix="sv:done"):
    survey_id: int
    question: int


@dataclass(frozen=True)
class SkipQuestion(Button, prefix="sv:skip"):
    survey_id: int
    question: int


@dataclass(frozen=True)
class PreviousQuestion(Button, prefix="sv:back"):
    """Back from question (or the summary at) `position`."""

    survey_id: int
    position: int


@dataclass(frozen=True)
class PauseSurvey(Button, prefix="sv:pause"):
    survey_id: int


@dataclass(frozen=True)
class SubmitSurvey(Button, prefix="sv:submit"):
    survey_id: int


@dataclass(frozen=True)
class SurveyAdmin(Button, prefix="sv:admin"):
    """The surveys a cadre manages."""

    pass


@dataclass(frozen=True)
class SurveyResults(Button, prefix="sv:results"):
    """Results: page 0 the overview, then a few questions a page."""

    survey_id: int
    page: int | None = None


@dataclass(frozen=True)
class SurveyCharts(Button, prefix="sv:charts"):
    survey_id: int


@dataclass(frozen=True)
class SurveyCsv(Button, prefix="sv:csv"):
    survey_id: int


@dataclass(frozen=True)
class NewSurvey(Button, prefix="sv:new"):
    """Build a survey in chat (a step-by-step form; the draft is kept in the database)."""

    pass


@dataclass(frozen=True)
class DraftCard(Button, prefix="sv:draft"):
    survey_id: int


@dataclass(frozen=True)
class AddQuestion(Button, prefix="sv:add_q"):
    survey_id: int


@dataclass(frozen=True)
class PreviewSurvey(Button, prefix="sv:preview"):
    survey_id: int


@dataclass(frozen=True)
class PublishSurvey(Button, prefix="sv:publish"):
    survey_id: int


@dataclass(frozen=True)
class EditSurvey(Button, prefix="sv:edit"):
    """Back to a draft to edit it (only before it opens)."""

    survey_id: int


@dataclass(frozen=True)
class EditSettings(Button, prefix="sv:settings"):
    """A draft's settings asked again (its questions stay)."""

    survey_id: int


@dataclass(frozen=True)
class RemoveQuestion(Button, prefix="sv:rm_q"):
    """The last question of a draft taken off."""

    survey_id: int
