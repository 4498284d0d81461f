"""The outcome trajectory as a small SVG chart for the staff API: PHQ-9 and
GAD-7 totals over time on one score axis shaded by severity band, the
course's completed sessions as dashed vertical lines, and self-reported
scores drawn hollow so they stand apart from those staff took.

A pure function of the trajectory (``render``): plain SVG text, no plotting
library, every piece of text escaped. Accessible: ``role="img"`` with a
``<title>`` and a ``<desc>`` that says in words what the lines show, and a
``<title>`` on every point."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from xml.sax.saxutils import escape, quoteattr

from services.sessions.trajectory import GAD7, PHQ9, Point, ScoreSource, Trajectory

WIDTH, HEIGHT = 720, 340
LEFT, RIGHT, TOP, BOTTOM = 44, 178, 52, 40
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
TOP_SCORE = 27  # PHQ-9's highest; GAD-7 (21) shares the axis


@dataclass(frozen=True)
class Style:
    colour: str
    dash: str | None
    shape: str   # circle or square: told apart without colour too


STYLES = {"phq9": Style("#1f5f9e", None, "circle"), "gad7": Style("#b4530a", "7 4", "square")}
# Where the bands of both instruments meet (5, 10, 15) and PHQ-9's 20;
# shaded from light to darker as severity rises.
BANDS = (
    (0, 4, "#f3f7f3", "0–4 minimal"),
    (5, 9, "#eef3e6", "5–9 mild"),
    (10, 14, "#f8f1dc", "10–14 moderate"),
    (15, 19, "#f8e6d8", "15–19 PHQ-9 moderately severe;|15–21 GAD-7 severe"),
    (20, 27, "#f5dada", "20–27 PHQ-9 severe"),
)


def render(trajectory: Trajectory, zone: tzinfo = timezone.utc) -> str:
    """The chart as SVG text; dates are the clinic's (``zone``)."""
    moments = [p.recorded_at for p in trajectory.points] + [s.at for s in trajectory.sessions]
    scale = TimeScale.around(moments)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="chart-title chart-desc" '
        'font-family="sans-serif" font-size="11">',
        '<title id="chart-title">Outcome trajectory: PHQ-9 and GAD-7 totals across the course</title>',
        f'<desc id="chart-desc">{escape(describe(trajectory, zone))}</desc>',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
        *_bands(), *_score_axis(), *_time_axis(scale, zone, labelled=bool(moments)), *_sessions(trajectory, scale),
    ]
    for instrument in (PHQ9, GAD7):
        parts += _series(trajectory.of(instrument.code), instrument.title, STYLES[instrument.code], scale, zone)
    if not trajectory.points:
        parts.append(f'<text x="{LEFT + PLOT_W / 2}" y="{TOP + PLOT_H / 2}" text-anchor="middle" fill="#444">'
                     'No PHQ-9 or GAD-7 scores recorded yet</text>')
    parts += _legend()
    parts.append("</svg>")
    return "\n".join(parts)


def describe(trajectory: Trajectory, zone: tzinfo = timezone.utc) -> str:
    """The chart in words, for screen readers (and the SVG's ``<desc>``)."""
    sentences = []
    for instrument in (PHQ9, GAD7):
        points = trajectory.of(instrument.code)
        if not points:
            continue
        first, last = points[0], points[-1]
        own = sum(1 for p in points if p.source == ScoreSource.SELF_REPORT.value)
        sentences.append(
            f"{instrument.title}: {len(points)} score{'s' if len(points) != 1 else ''}, "
            f"from {first.total} on {_day(first.recorded_at, zone)} to {last.total} on {_day(last.recorded_at, zone)}"
            f" ({own} self-reported).")
    if not sentences:
        sentences.append("No PHQ-9 or GAD-7 scores recorded yet.")
    if trajectory.sessions:
        count = len(trajectory.sessions)
        sentences.append(f"{count} completed session{'s' if count != 1 else ''}, "
                         f"{trajectory.sessions[0].day.isoformat()} to {trajectory.sessions[-1].day.isoformat()}.")
    else:
        sentences.append("No completed sessions yet.")
    return " ".join(sentences)


@dataclass(frozen=True)
class TimeScale:
    start: datetime
    end: datetime

    @classmethod
    def around(cls, moments: list[datetime]) -> "TimeScale":
        if not moments:  # nothing to place: any span will do, and no dates are labelled
            epoch = datetime(2000, 1, 1, tzinfo=timezone.utc)
            return cls(epoch, epoch + timedelta(days=7))
        low, high = min(moments), max(moments)
        if high - low < timedelta(days=2):
            middle = low + (high - low) / 2
            low, high = middle - timedelta(days=1), middle + timedelta(days=1)
        margin = (high - low) * 0.04
        return cls(low - margin, high + margin)

    def x(self, moment: datetime) -> float:
        return round(LEFT + PLOT_W * ((moment - self.start) / (self.end - self.start)), 1)


def y(score: float) -> float:
    return round(TOP + PLOT_H * (1 - score / TOP_SCORE), 1)


def _day(moment: datetime, zone: tzinfo) -> str:
    return moment.astimezone(zone).date().isoformat()


def _bands() -> list[str]:
    parts = ['<g class="bands">']
    for low, high, fill, label in BANDS:
        top, bottom = y(min(high + 1, TOP_SCORE)), y(low)
        parts.append(f'<rect x="{LEFT}" y="{top}" width="{PLOT_W}" height="{round(bottom - top, 1)}" fill="{fill}"/>')
        lines = label.split("|")
        first = (top + bottom) / 2 + 4 - 6 * (len(lines) - 1)
        for n, line in enumerate(lines):
            parts.append(f'<text x="{LEFT + PLOT_W + 6}" y="{round(first + 12 * n, 1)}" fill="#555" '
                         f'font-size="10">{escape(line)}</text>')
    parts.append("</g>")
    return parts


def _score_axis() -> list[str]:
    parts = ['<g class="score-axis">',
             f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + PLOT_H}" stroke="#333"/>']
    for score in (0, 5, 10, 15, 20, 25):
        parts.append(f'<line x1="{LEFT - 4}" y1="{y(score)}" x2="{LEFT}" y2="{y(score)}" stroke="#333"/>')
        parts.append(f'<text x="{LEFT - 7}" y="{y(score) + 4}" text-anchor="end">{score}</text>')
    parts.append(f'<text x="12" y="{TOP + PLOT_H / 2}" text-anchor="middle" '
                 f'transform="rotate(-90 12 {TOP + PLOT_H / 2})">Total score</text>')
    parts.append("</g>")
    return parts


def _time_axis(scale: TimeScale, zone: tzinfo, labelled: bool = True) -> list[str]:
    bottom = TOP + PLOT_H
    parts = ['<g class="time-axis">',
             f'<line x1="{LEFT}" y1="{bottom}" x2="{LEFT + PLOT_W}" y2="{bottom}" stroke="#333"/>']
    if not labelled:
        return parts + ["</g>"]
    first = scale.start.astimezone(zone).date() + timedelta(days=1)
    last = scale.end.astimezone(zone).date()
    span = max((last - first).days, 1)
    step = max(1, -(-span // 6))  # at most about seven labels
    day = first
    while day <= last:
        moment = datetime(day.year, day.month, day.day, tzinfo=zone)
        x = scale.x(moment)
        if LEFT <= x <= LEFT + PLOT_W:
            parts.append(f'<line x1="{x}" y1="{bottom}" x2="{x}" y2="{bottom + 4}" stroke="#333"/>')
            parts.append(f'<text x="{x}" y="{bottom + 16}" text-anchor="middle">{day.strftime("%b")} {day.day}</text>')
        day += timedelta(days=step)
    parts.append("</g>")
    return parts


def _sessions(trajectory: Trajectory, scale: TimeScale) -> list[str]:
    parts = ['<g class="sessions">']
    for marker in trajectory.sessions:
        x = scale.x(marker.at)
        parts.append(f'<line class="session-marker" x1="{x}" y1="{TOP}" x2="{x}" y2="{TOP + PLOT_H}" '
                     f'stroke="#6b6b6b" stroke-dasharray="3 3"><title>Session {marker.number}, '
                     f'{marker.day.isoformat()}</title></line>')
        parts.append(f'<text x="{x}" y="{TOP - 4}" text-anchor="middle" fill="#444" font-size="10">'
                     f'S{marker.number}</text>')
    parts.append("</g>")
    return parts


def _series(points: list[Point], title: str, style: Style, scale: TimeScale, zone: tzinfo) -> list[str]:
    if not points:
        return []
    parts = [f'<g class="series" data-instrument={quoteattr(title)}>']
    if len(points) > 1:
        path = " ".join(f"{scale.x(p.recorded_at)},{y(p.total)}" for p in points)
        dash = f' stroke-dasharray="{style.dash}"' if style.dash else ""
        parts.append(f'<polyline points="{path}" fill="none" stroke="{style.colour}" stroke-width="2"{dash}/>')
    for p in points:
        own = p.source == ScoreSource.SELF_REPORT.value
        label = (f"{title} {p.total} ({p.band.replace('_', ' ')}), "
                 f"{'self-reported' if own else 'staff'}, {_day(p.recorded_at, zone)}")
        parts.append(_marker(scale.x(p.recorded_at), y(p.total), style, hollow=own,
                             extra=f' class="point {p.source}"', title=label))
    parts.append("</g>")
    return parts


def _marker(x: float, y_: float, style: Style, hollow: bool, extra: str = "", title: str | None = None) -> str:
    fill = "#ffffff" if hollow else style.colour
    inner = f"<title>{escape(title)}</title>" if title else ""
    if style.shape == "circle":
        return (f'<circle cx="{x}" cy="{y_}" r="4.5" fill="{fill}" stroke="{style.colour}" stroke-width="2"'
                f'{extra}>{inner}</circle>')
    return (f'<rect x="{round(x - 4, 1)}" y="{round(y_ - 4, 1)}" width="8" height="8" fill="{fill}" '
            f'stroke="{style.colour}" stroke-width="2"{extra}>{inner}</rect>')


def _legend() -> list[str]:
    parts = ['<g class="legend">']
    x = LEFT
    for code, title in (("phq9", "PHQ-9"), ("gad7", "GAD-7")):
        style = STYLES[code]
        dash = f' stroke-dasharray="{style.dash}"' if style.dash else ""
        parts.append(f'<line x1="{x}" y1="16" x2="{x + 26}" y2="16" stroke="{style.colour}" stroke-width="2"{dash}/>')
        parts.append(_marker(x + 13, 16, style, hollow=False))
        parts.append(f'<text x="{x + 32}" y="20">{title}</text>')
        x += 86
    grey = Style("#333333", None, "circle")
    parts.append(_marker(x + 5, 16, grey, hollow=False))
    parts.append(f'<text x="{x + 14}" y="20">staff</text>')
    x += 56
    parts.append(_marker(x + 5, 16, grey, hollow=True))
    parts.append(f'<text x="{x + 14}" y="20">self-reported</text>')
    x += 100
    parts.append(f'<line x1="{x}" y1="9" x2="{x}" y2="23" stroke="#6b6b6b" stroke-dasharray="3 3"/>')
    parts.append(f'<text x="{x + 6}" y="20">completed session</text>')
    parts.append("</g>")
    return parts
