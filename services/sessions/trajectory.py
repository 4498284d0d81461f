"""A patient's outcome trajectory: the PHQ-9 and GAD-7 totals across their
course(s), each marked as taken by staff or reported by the patient, with
the course's completed sessions as markers. Pure: built from sessions'
rows, no database or broker, so the FHIR export and the chart are tested
directly."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Callable, Iterable

from common.events import as_utc, iso


class ScoreSource(str, Enum):
    STAFF = "staff"               # taken at check-in or entered by a clinician
    SELF_REPORT = "self_report"   # the patient answered by secure link


@dataclass(frozen=True)
class Instrument:
    code: str
    title: str
    highest: int
    # (lowest total of the band, band) in rising order; the published cut-offs.
    bands: tuple[tuple[int, str], ...]

    def band(self, total: int) -> str:
        return [name for lowest, name in self.bands if total >= lowest][-1]


PHQ9 = Instrument("phq9", "PHQ-9", 27, ((0, "minimal"), (5, "mild"), (10, "moderate"),
                                         (15, "moderately_severe"), (20, "severe")))
GAD7 = Instrument("gad7", "GAD-7", 21, ((0, "minimal"), (5, "mild"), (10, "moderate"), (15, "severe")))
INSTRUMENTS = {instrument.code: instrument for instrument in (PHQ9, GAD7)}


@dataclass(frozen=True)
class Point:
    instrument: str
    total: int
    source: str
    recorded_at: datetime
    plan_id: str
    session_id: str | None
    score_id: int

    @property
    def band(self) -> str:
        return INSTRUMENTS[self.instrument].band(self.total)

    def view(self) -> dict:
        return {"instrument": self.instrument, "total": self.total, "band": self.band, "source": self.source,
                "recorded_at": iso(self.recorded_at), "plan_id": self.plan_id, "session_id": self.session_id}


@dataclass(frozen=True)
class SessionMarker:
    session_id: str
    plan_id: str
    number: int          # the nth completed session of its course
    at: datetime         # when dosing started (check-in if it never did)
    day: date            # the clinic's local date of ``at``

    def view(self) -> dict:
        return {"session_id": self.session_id, "plan_id": self.plan_id, "number": self.number,
                "date": self.day.isoformat(), "started_at": iso(self.at)}


@dataclass(frozen=True)
class Trajectory:
    patient_id: str
    plan_ids: tuple[str, ...]
    points: tuple[Point, ...]
    sessions: tuple[SessionMarker, ...]

    def of(self, instrument: str) -> list[Point]:
        return [p for p in self.points if p.instrument == instrument]

    def view(self, courses: list[dict]) -> dict:
        return {"patient_id": self.patient_id, "courses": courses,
                "points": [p.view() for p in self.points], "sessions": [s.view() for s in self.sessions]}


def build(patient_id: str, plan_ids: Iterable[str], scores: Iterable, completed_sessions: Iterable,
          local_date: Callable[[datetime], date]) -> Trajectory:
    """``scores``: outcome-score rows (``OutcomeScore``); ``completed_sessions``:
    session records that were completed, of the same plans. Points come in
    time order (ties in the order they were recorded); sessions are numbered
    within their own course."""
    plan_ids = tuple(plan_ids)
    points = sorted((Point(s.instrument, s.total, s.source, as_utc(s.recorded_at), s.plan_id, s.session_id, s.id)
                     for s in scores if s.instrument in INSTRUMENTS),
                    key=lambda p: (p.recorded_at, p.score_id))
    by_plan: dict[str, list] = {}
    for record in completed_sessions:
        by_plan.setdefault(record.plan_id, []).append(record)
    markers = []
    for plan_id, records in by_plan.items():
        ordered = sorted(records, key=lambda r: (as_utc(r.started_at or r.checked_in_at), r.session_id))
        for number, record in enumerate(ordered, start=1):
            at = as_utc(record.started_at or record.checked_in_at)
            markers.append(SessionMarker(record.session_id, plan_id, number, at, local_date(at)))
    markers.sort(key=lambda m: (m.at, m.session_id))
    return Trajectory(patient_id, plan_ids, tuple(points), tuple(markers))
