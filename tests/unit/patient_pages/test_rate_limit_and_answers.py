"""The patient pages' own rules: the token buckets and reading a form."""
from patient_pages.questionnaires import FORMS, read_answers
from patient_pages.ratelimit import TokenBuckets


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_bucket_allows_its_burst_then_refills_at_its_rate():
    clock = Clock()
    buckets = TokenBuckets(per_minute=6, clock=clock)
    assert all(buckets.allow("203.0.113.9") for _ in range(6))
    assert not buckets.allow("203.0.113.9")
    assert buckets.retry_after("203.0.113.9") >= 1
    assert buckets.allow("198.51.100.7"), "each client has its own bucket"
    clock.now += 10  # one token a ten seconds
    assert buckets.allow("203.0.113.9")
    assert not buckets.allow("203.0.113.9")


def test_every_question_must_be_answered_with_one_of_the_choices():
    form = FORMS["gad7"]
    answers, missing = read_answers(form, {f"q{n}": "1" for n in range(1, 8)})
    assert answers == [1] * 7 and missing == []
    answers, missing = read_answers(form, {"q1": "0", "q2": "4", "q3": "-1", "q4": "x"})
    assert answers is None and missing == [2, 3, 4, 5, 6, 7]


def test_the_forms_match_intakes_instruments():
    from services.intake.check_in import CHECK_IN
    from services.intake.domain import INSTRUMENTS, SELF_REPORT_QUESTIONNAIRES
    assert set(FORMS) == set(SELF_REPORT_QUESTIONNAIRES)
    for code, form in FORMS.items():
        instrument = CHECK_IN if code == "check_in" else INSTRUMENTS[code]
        assert len(form.questions) == instrument.items
        assert max(len(form.choices_for(n)) for n in range(1, instrument.items + 1)) == instrument.max_answer + 1


def test_the_check_in_takes_each_questions_own_choices():
    form = FORMS["check_in"]
    answers, missing = read_answers(form, {"q1": "2", "q2": "2", "q3": "0", "q4": "1", "q5": "1"})
    assert answers == [2, 2, 0, 1, 1] and missing == []
    answers, missing = read_answers(form, {"q1": "0", "q2": "0", "q3": "0", "q4": "0", "q5": "2"})
    assert answers is None and missing == [5], "the self-harm question is a plain yes or no"


def test_no_form_heading_names_a_condition_or_an_instrument():
    for form in FORMS.values():
        assert not any(word in form.heading.lower() for word in ("phq", "gad", "ssrs", "suicid", "depress", "anx"))
