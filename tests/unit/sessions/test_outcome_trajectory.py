"""The outcome trajectory as pure code: the series built from sessions' rows
(time order, sources kept, sessions numbered per course), its FHIR
Observations, and the SVG chart (parsed as XML: accessible, one marker per
point and session, self-reported points hollow)."""
from datetime import date, datetime, timedelta, timezone
from types import SimpleNamespace
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation

from services.sessions import fhir, outcome_chart, trajectory

SVG = "{http://www.w3.org/2000/svg}"
ZONE = ZoneInfo("America/New_York")
DAY1 = datetime(2026, 3, 2, 14, 0, tzinfo=timezone.utc)


def score(id, instrument, total, source, days, plan="plan-1", session=None):
    return SimpleNamespace(id=id, instrument=instrument, total=total, source=source,
                           recorded_at=DAY1 + timedelta(days=days), plan_id=plan, session_id=session)


def completed(session_id, days, plan="plan-1"):
    return SimpleNamespace(session_id=session_id, plan_id=plan, started_at=DAY1 + timedelta(days=days, minutes=30),
                           checked_in_at=DAY1 + timedelta(days=days))


def local_date(moment):
    return moment.astimezone(ZONE).date()


@pytest.fixture
def course():
    scores = [score(3, "phq9", 11, "self_report", 5), score(1, "phq9", 18, "staff", 0, session="s-1"),
              score(2, "gad7", 12, "staff", 0, session="s-1"), score(4, "gad7", 7, "self_report", 6),
              score(5, "phq9", 8, "staff", 7, session="s-3"), score(6, "pcl5", 40, "staff", 7)]
    sessions = [completed("s-3", 7), completed("s-1", 0), completed("s-2", 3),
                completed("s-9", 40, plan="plan-2")]
    return trajectory.build("patient-1", ["plan-1", "plan-2"], scores, sessions, local_date)


def test_the_series_is_in_time_order_with_its_sources_and_bands(course):
    points = [(p.instrument, p.total, p.source, p.band) for p in course.points]
    assert points == [("phq9", 18, "staff", "moderately_severe"), ("gad7", 12, "staff", "moderate"),
                      ("phq9", 11, "self_report", "moderate"), ("gad7", 7, "self_report", "mild"),
                      ("phq9", 8, "staff", "mild")]  # PCL-5 is not part of it
    assert [p.total for p in course.of("gad7")] == [12, 7]


def test_sessions_are_numbered_within_their_own_course(course):
    assert [(m.session_id, m.number, m.day) for m in course.sessions] == [
        ("s-1", 1, date(2026, 3, 2)), ("s-2", 2, date(2026, 3, 5)), ("s-3", 3, date(2026, 3, 9)),
        ("s-9", 1, date(2026, 4, 11))]


def test_the_view_names_each_points_source_and_session(course):
    view = course.view([])
    assert view["points"][0] == {"instrument": "phq9", "total": 18, "band": "moderately_severe", "source": "staff",
                                 "recorded_at": "2026-03-02T14:00:00Z", "plan_id": "plan-1", "session_id": "s-1"}
    assert view["sessions"][0] == {"session_id": "s-1", "plan_id": "plan-1", "number": 1, "date": "2026-03-02",
                                   "started_at": "2026-03-02T14:30:00Z"}


@pytest.mark.parametrize("instrument, total, band", [
    ("phq9", 0, "minimal"), ("phq9", 4, "minimal"), ("phq9", 5, "mild"), ("phq9", 14, "moderate"),
    ("phq9", 19, "moderately_severe"), ("phq9", 20, "severe"), ("phq9", 27, "severe"),
    ("gad7", 9, "mild"), ("gad7", 10, "moderate"), ("gad7", 15, "severe"), ("gad7", 21, "severe"),
])
def test_bands_are_the_published_cut_offs(instrument, total, band):
    assert trajectory.INSTRUMENTS[instrument].band(total) == band


def test_each_point_is_a_valid_fhir_observation_marked_staff_or_self_reported(course):
    bundle = fhir.outcome_bundle(course)
    Bundle.model_validate(bundle)
    observations = [entry["resource"] for entry in bundle["entry"]]
    for observation in observations:
        Observation.model_validate(observation)
    staff, gad7_own = observations[1], observations[3]
    assert staff["code"]["coding"][0] == {"system": "http://loinc.org", "code": "70274-6",
                                          "display": "Generalized anxiety disorder 7 item (GAD-7) total score"}
    assert observations[0]["code"]["coding"][0]["code"] == "44261-6"
    assert (staff["valueInteger"], staff["effectiveDateTime"]) == (12, "2026-03-02T14:00:00Z")
    assert staff["subject"] == {"reference": "Patient/patient-1"}
    assert staff["category"][0]["coding"][0]["code"] == "survey"
    assert staff["encounter"] == {"reference": "Encounter/s-1"} and "performer" not in staff
    assert staff["method"]["coding"][0]["code"] == "score-source/staff"
    assert gad7_own["performer"] == [{"reference": "Patient/patient-1"}]
    assert gad7_own["method"]["coding"][0]["code"] == "score-source/self_report"
    assert len({entry["fullUrl"] for entry in bundle["entry"]}) == 5


def parse(svg: str) -> ElementTree.Element:
    return ElementTree.fromstring(svg)


def test_the_chart_is_an_accessible_svg(course):
    root = parse(outcome_chart.render(course, ZONE))
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    assert "PHQ-9 and GAD-7" in title.text
    assert desc.text == ("PHQ-9: 3 scores, from 18 on 2026-03-02 to 8 on 2026-03-09 (1 self-reported). "
                         "GAD-7: 2 scores, from 12 on 2026-03-02 to 7 on 2026-03-08 (1 self-reported). "
                         "4 completed sessions, 2026-03-02 to 2026-04-11.")


def test_the_chart_draws_each_point_hollow_when_self_reported_and_each_session(course):
    root = parse(outcome_chart.render(course, ZONE))
    points = [e for e in root.iter() if "point" in (e.get("class") or "").split()]
    assert len(points) == 5
    hollow = [p.find(f"{SVG}title").text for p in points if p.get("fill") == "#ffffff"]
    assert hollow == ["PHQ-9 11 (moderate), self-reported, 2026-03-07",
                      "GAD-7 7 (mild), self-reported, 2026-03-08"]
    assert {p.tag for p in points} == {f"{SVG}circle", f"{SVG}rect"}  # PHQ-9 circles, GAD-7 squares
    markers = [e for e in root.iter(f"{SVG}line") if e.get("class") == "session-marker"]
    assert [m.find(f"{SVG}title").text for m in markers] == [
        "Session 1, 2026-03-02", "Session 2, 2026-03-05", "Session 3, 2026-03-09", "Session 1, 2026-04-11"]
    xs = [float(m.get("x1")) for m in markers]
    assert xs == sorted(xs) and outcome_chart.LEFT <= xs[0] and xs[-1] <= outcome_chart.LEFT + outcome_chart.PLOT_W
    assert len(list(root.iter(f"{SVG}polyline"))) == 2
    assert "15–19 PHQ-9 moderately severe;" in [t.text for t in root.iter(f"{SVG}text")]


def test_a_higher_score_is_drawn_higher_and_a_later_one_further_right(course):
    root = parse(outcome_chart.render(course, ZONE))
    phq9 = [e for e in root.iter(f"{SVG}circle") if "point" in (e.get("class") or "")]
    ys, xs = [float(c.get("cy")) for c in phq9], [float(c.get("cx")) for c in phq9]
    assert ys[0] < ys[1] < ys[2] and xs == sorted(xs)


def test_an_empty_trajectory_says_so():
    empty = trajectory.build("patient-1", [], [], [], local_date)
    root = parse(outcome_chart.render(empty))
    assert "No PHQ-9 or GAD-7 scores recorded yet" in root.find(f"{SVG}desc").text
    assert not [e for e in root.iter() if "point" in (e.get("class") or "")]
    assert not list(root.find(f"{SVG}g[@class='time-axis']").iter(f"{SVG}text"))  # no dates to show
    assert outcome_chart.render(empty) == outcome_chart.render(empty)  # nothing taken from the clock
    assert fhir.outcome_bundle(empty) == {"resourceType": "Bundle", "type": "collection", "entry": []}


def test_one_score_alone_still_has_a_time_axis():
    single = trajectory.build("patient-1", ["plan-1"], [score(1, "phq9", 14, "staff", 0)], [], local_date)
    root = parse(outcome_chart.render(single, ZONE))
    labels = [t.text for t in root.find(f"{SVG}g[@class='time-axis']").iter(f"{SVG}text")]
    assert labels and "Mar 2" in labels
