"""The wording patients read. Intake scores the answers (its domain rules);
this module only says the questions and answer choices in plain language."""
from __future__ import annotations

from dataclasses import dataclass

OFTEN = ("Not at all", "Several days", "More than half the days", "Nearly every day")
YES_NO = ("No", "Yes")
SINCE_VISIT = ("No", "A little, and it has passed", "Yes, and it is still bothering me")


@dataclass(frozen=True)
class Form:
    code: str
    heading: str
    lead: str
    questions: tuple[str, ...]
    choices: tuple[str, ...] = OFTEN
    # When questions differ in their answers: one tuple of choices per question.
    choices_by_question: tuple[tuple[str, ...], ...] = ()

    def choices_for(self, number: int) -> tuple[str, ...]:
        return self.choices_by_question[number - 1] if self.choices_by_question else self.choices


FORMS = {
    "phq9": Form("phq9", "Check-in form", "Over the last 2 weeks, how often have you been bothered by any of the "
                 "following problems?", (
                     "Little interest or pleasure in doing things",
                     "Feeling down, depressed, or hopeless",
                     "Trouble falling or staying asleep, or sleeping too much",
                     "Feeling tired or having little energy",
                     "Poor appetite or overeating",
                     "Feeling bad about yourself — or that you are a failure or have let yourself or your "
                     "family down",
                     "Trouble concentrating on things, such as reading the newspaper or watching television",
                     "Moving or speaking so slowly that other people could have noticed? Or the opposite — "
                     "being so fidgety or restless that you have been moving around a lot more than usual",
                     "Thoughts that you would be better off dead or of hurting yourself in some way",
                 )),
    "gad7": Form("gad7", "Check-in form", "Over the last 2 weeks, how often have you been bothered by the "
                 "following problems?", (
                     "Feeling nervous, anxious or on edge",
                     "Not being able to stop or control worrying",
                     "Worrying too much about different things",
                     "Trouble relaxing",
                     "Being so restless that it is hard to sit still",
                     "Becoming easily annoyed or irritable",
                     "Feeling afraid as if something awful might happen",
                 )),
    # The C-SSRS screener's questions, in its order (intake scores them).
    "cssrs": Form("cssrs", "Check-in form", "These questions are about the past month, except the last one. "
                  "Answer “No” or “Yes”.", (
                      "Have you wished you were dead or wished you could go to sleep and not wake up?",
                      "Have you actually had any thoughts of killing yourself?",
                      "Have you been thinking about how you might do this?",
                      "Have you had these thoughts and had some intention of acting on them?",
                      "Have you started to work out or worked out the details of how to kill yourself? "
                      "Do you intend to carry out this plan?",
                      "In the past 3 months, have you done anything, started to do anything, or prepared to do "
                      "anything to end your life?",
                  ), choices=YES_NO),
    # The post-session check-in (scored by services/intake/check_in.py).
    "check_in": Form("check_in", "How are you after your visit?", "A few quick questions about how you have been "
                     "since your last visit.", (
                         "How are you feeling today, compared with before your visit?",
                         "Since your visit, have you felt sick to your stomach?",
                         "Since your visit, have you felt dizzy or unsteady?",
                         "Since your visit, have you felt confused, foggy or not like yourself?",
                         "Have you had any thoughts of harming yourself?",
                     ), choices_by_question=(("Better", "About the same", "Worse"), SINCE_VISIT, SINCE_VISIT,
                                             SINCE_VISIT, YES_NO)),
}


def read_answers(form: Form, submitted) -> tuple[list[int] | None, list[int]]:
    """The answers as numbers, or None and the question numbers left blank
    or not one of the choices."""
    answers, missing = [], []
    for number in range(1, len(form.questions) + 1):
        value = submitted.get(f"q{number}")
        if value is None or not value.isdigit() or int(value) >= len(form.choices_for(number)):
            missing.append(number)
        else:
            answers.append(int(value))
    return (None if missing else answers), missing
