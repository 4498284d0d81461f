"""The post-session check-in a patient fills in by link the day after a
session, and how any self-reported form is scored. Pure, like the domain
module: tested without a broker.

The check-in is the clinic's own short form, not a published instrument:
how the patient feels, whether nausea, dizziness or confusion has lasted
past the visit, and whether they have had thoughts of harming themselves.
Its items take different answer ranges (the last is a plain yes/no), which
is why it is scored here rather than as one more ``Instrument``."""
from __future__ import annotations

from common.errors import ValidationFailed
from services.intake import domain
from services.intake.domain import Instrument, QuestionnaireScore

CHECK_IN_CODE = "check_in"
# Items 1-4: 0 (fine / better), 1 (a little / about the same), 2 (worse /
# still bothering me). Item 5: 0 no, 1 yes.
CHECK_IN = Instrument(CHECK_IN_CODE, "post-session check-in", 5, 0, 2, ())
FEELING, NAUSEA, DIZZINESS, CONFUSION, SELF_HARM = range(1, 6)
LASTING_EFFECT_ITEMS = (NAUSEA, DIZZINESS, CONFUSION)
STILL_BOTHERING = 2
FEELING_WORSE = 2

CHECK_IN_SELF_HARM_FLAG = "check_in_self_harm"
# What the band tells staff, from least to most pressing.
CHECK_IN_BANDS = ("settled", "follow_up", "urgent")


def score_check_in(answers) -> QuestionnaireScore:
    """Total: items 1-4 (0-8), how unsettled the patient is after the visit.
    Band ``urgent`` and the self-harm flag on a "yes" to item 5, whatever
    the rest; ``follow_up`` when a side effect is still bothering them or
    they feel worse than before the visit; else ``settled``."""
    answers = domain.validate_answers(CHECK_IN, answers)
    if answers[SELF_HARM - 1] > 1:
        raise ValidationFailed(
            "post-session check-in not scored: item 5 is outside 0–1",
            [{"field": f"answers.item{SELF_HARM}", "message": "item 5 is outside 0–1"}],
        )
    total = sum(answers[:SELF_HARM - 1])
    if answers[SELF_HARM - 1]:
        return QuestionnaireScore(CHECK_IN_CODE, total, "urgent", (CHECK_IN_SELF_HARM_FLAG,))
    lasting = any(answers[item - 1] >= STILL_BOTHERING for item in LASTING_EFFECT_ITEMS)
    band = "follow_up" if lasting or answers[FEELING - 1] >= FEELING_WORSE else "settled"
    return QuestionnaireScore(CHECK_IN_CODE, total, band)


def score_self_report(code: str, answers, *, pcl5_cutoff: int = domain.DEFAULT_PCL5_CUTOFF) -> QuestionnaireScore:
    """A form answered by link, scored by the same rules as one staff enter."""
    if code == CHECK_IN_CODE:
        return score_check_in(answers)
    return domain.score_questionnaire(code, answers, pcl5_cutoff=pcl5_cutoff)
