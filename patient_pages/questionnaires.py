"""The wording patients read. Intake scores the answers (its domain rules);
this module only says the questions and answer choices in plain language."""
from __future__ import annotations

from dataclasses import dataclass

OFTEN = ("Not at all", "Several days", "More than half the days", "Nearly every day")


@dataclass(frozen=True)
class Form:
    code: str
    heading: str
    lead: str
    questions: tuple[str, ...]
    choices: tuple[str, ...] = OFTEN


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
}


def read_answers(form: Form, submitted) -> tuple[list[int] | None, list[int]]:
    """The answers as numbers, or None and the question numbers left blank
    or not one of the choices."""
    answers, missing = [], []
    for number in range(1, len(form.questions) + 1):
        value = submitted.get(f"q{number}")
        if value is None or not value.isdigit() or int(value) >= len(form.choices):
            missing.append(number)
        else:
            answers.append(int(value))
    return (None if missing else answers), missing
