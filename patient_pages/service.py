"""The patient pages service: ``GET``/``POST /f/<token>`` (the questionnaire
a self-report link opens) and its stylesheet, besides the probes every
process serves (``/health``, ``/ready``, ``/metrics``: no patient data; the
clinic's proxy forwards only ``/f/`` and ``/static/`` from the internet).
No staff route exists here.

Server-rendered HTML that works without JavaScript, answers kept by intake
(by RPC), every request rate-limited per client address and per link. The
token never reaches a log line: the handlers catch everything themselves,
and the pages send ``Referrer-Policy: no-referrer``."""
from __future__ import annotations

import logging
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from nameko.dependency_providers import Config
from nameko.extensions import DependencyProvider
from nameko.web.handlers import http
from werkzeug.wrappers import Response

from common import self_report_links as links
from common.broker import RpcProxy
from common.errors import ClinicError
from common.service import PROBE_TIMEOUT_SECONDS, ObservedService, broker_reachable, json_response
from patient_pages.questionnaires import FORMS, read_answers
from patient_pages.ratelimit import TokenBuckets

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
STYLESHEET = (HERE / "static" / "patient.css").read_bytes()
_templates = Environment(loader=FileSystemLoader(str(HERE / "templates")),
                         autoescape=select_autoescape(default=True, default_for_string=True))

HEADERS = {
    # The link is the key to the form: no cache keeps it, no referrer leaks it.
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; form-action 'self'; base-uri 'none'; "
                               "frame-ancestors 'none'",
}

GONE = {
    "expired": ("This link has expired",
                ["For your privacy, form links work for a limited time only.",
                 "Please contact the clinic and ask for a new link."]),
    "used": ("This form has already been sent",
             ["Thank you: your answers reached the clinic. Each link works only once.",
              "If you want to change an answer, please contact the clinic."]),
}
NOT_FOUND = ("We could not find this form",
             ["The link may be incomplete. Please check that you opened the whole link from your message, "
              "or contact the clinic for a new one."])
THANKS = ("Thank you", ["Your answers have been sent to the clinic. You can close this page now.",
                        "If anything worries you before your next visit, please contact the clinic."])
UNAVAILABLE = ("Please try again in a few minutes",
               ["We cannot open the form right now. Your link still works: please try again shortly."])
TOO_MANY = ("Please wait a moment", ["Too many tries in a short time. Please wait a minute and try again."])


class PageSettings(DependencyProvider):
    """The SELF_REPORT section, and this process's rate limiters."""

    def setup(self):
        config = self.container.config
        section = config.get("SELF_REPORT") or {}
        self.value = {
            "crisis_text": links.settings(config)["crisis_text"],
            "per_client": TokenBuckets(float(section.get("RATE_PER_MINUTE_CLIENT") or 30)),
            "per_link": TokenBuckets(float(section.get("RATE_PER_MINUTE_TOKEN") or 10)),
        }

    def get_dependency(self, worker_ctx):
        return self.value


class PatientPagesService(ObservedService):
    name = "patient_pages"

    config = Config()
    pages = PageSettings()
    intake = RpcProxy("intake")

    @http("GET", "/health")
    def health(self, request):
        return json_response(200, {"status": "ok", "service": "patient-pages"})

    @http("GET", "/ready")
    def ready(self, request):
        """Ready when the broker (the way to intake) answers."""
        ready = broker_reachable(self.config["AMQP_URI"], timeout=PROBE_TIMEOUT_SECONDS)
        return json_response(200 if ready else 503, {"status": "ready" if ready else "not_ready",
                                                     "service": "patient-pages",
                                                     "checks": {"broker": "ok" if ready else "unreachable"}})

    @http("GET", "/static/patient.css")
    def stylesheet(self, request):
        return Response(STYLESHEET, status=200, mimetype="text/css",
                        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"})

    @http("GET,POST", "/f/<token>")
    def form(self, request, token):
        try:
            limited = self._rate_limited(request, token)
            if limited is not None:
                return limited
            if not links.well_formed(token):
                return self._page(404, "message.html.j2", heading=NOT_FOUND[0], paragraphs=NOT_FOUND[1])
            if request.method == "POST":
                return self._submit(request, token)
            return self._show(token)
        except Exception as exc:  # noqa: BLE001 - the token must not reach nameko's error log
            log.warning("patient page failed: %s", type(exc).__name__)
            return self._page(503, "message.html.j2", heading=UNAVAILABLE[0], paragraphs=UNAVAILABLE[1],
                              headers={"Retry-After": "30"})

    def _show(self, token: str) -> Response:
        opened = self.intake.open_self_report(token)
        if opened.get("status") != "open":
            return self._closed(opened.get("status"))
        form = FORMS[opened["questionnaire"]]
        return self._page(200, "form.html.j2", form=form, token=token, missing=[], given={})

    def _submit(self, request, token: str) -> Response:
        opened = self.intake.open_self_report(token)
        if opened.get("status") != "open":
            return self._closed(opened.get("status"))
        form = FORMS[opened["questionnaire"]]
        answers, missing = read_answers(form, request.form)
        if answers is None:
            return self._page(422, "form.html.j2", form=form, token=token, missing=missing,
                              given=request.form.to_dict())
        try:
            result = self.intake.submit_self_report(token, answers)
        except ClinicError:
            return self._page(422, "form.html.j2", form=form, token=token,
                              missing=list(range(1, len(form.questions) + 1)), given={})
        if result.get("status") != "submitted":
            return self._closed(result.get("status"))
        return self._page(200, "message.html.j2", heading=THANKS[0], paragraphs=THANKS[1])

    def _closed(self, status) -> Response:
        if status in GONE:
            heading, paragraphs = GONE[status]
            return self._page(410, "message.html.j2", heading=heading, paragraphs=paragraphs)
        return self._page(404, "message.html.j2", heading=NOT_FOUND[0], paragraphs=NOT_FOUND[1])

    def _rate_limited(self, request, token: str) -> Response | None:
        pages = self.pages
        client = request.remote_addr or "unknown"
        for limiter, key in ((pages["per_client"], client), (pages["per_link"], links.token_hash(token))):
            if not limiter.allow(key):
                return self._page(429, "message.html.j2", heading=TOO_MANY[0], paragraphs=TOO_MANY[1],
                                  headers={"Retry-After": str(limiter.retry_after(key))})
        return None

    def _page(self, status: int, template: str, headers=None, **view) -> Response:
        title = view.get("heading") or (view["form"].heading if "form" in view else "Check-in")
        body = _templates.get_template(template).render(title=title, crisis_text=self.pages["crisis_text"], **view)
        return Response(body, status=status, mimetype="text/html", headers={**HEADERS, **(headers or {})})
