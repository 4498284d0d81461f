"""The patient pages over plain HTTP: only their own routes, limited per
client and per link, and a page (not an error) when intake cannot answer."""
import httpx
import pytest

from common import self_report_links as links
from patient_pages.service import PatientPagesService
from services.intake.service import IntakeService
from tests.conftest import web_address

CLIN = {"Authorization": "Bearer t-clin"}


@pytest.fixture
def pages(start_service):
    start_service(IntakeService)
    pages = start_service(PatientPagesService, SELF_REPORT={"RATE_PER_MINUTE_TOKEN": 3, "RATE_PER_MINUTE_CLIENT": 6})
    with httpx.Client(base_url=web_address(pages), timeout=15) as client:
        yield client


def test_no_staff_route_is_served(pages):
    for path in ("/api/v1/patients", "/api/v1/openapi.json", "/api/v1/health", "/f/", "/f/x/y", "/admin"):
        assert pages.get(path, headers=CLIN).status_code == 404, path
    assert pages.get("/static/patient.css").status_code == 200
    assert pages.get("/ready").status_code == 200


def test_an_unknown_link_is_a_plain_404_page(pages):
    answer = pages.get(f"/f/{links.token_for('x', 'y')}")
    assert answer.status_code == 404 and answer.headers["Content-Type"].startswith("text/html")
    assert "could not find this form" in answer.text and "988" in answer.text
    assert answer.headers["Referrer-Policy"] == "no-referrer"


def test_requests_are_limited_per_link_and_per_client(pages):
    token = links.token_for("x", "guessing")
    assert [pages.get(f"/f/{token}").status_code for _ in range(4)] == [404, 404, 404, 429]
    limited = pages.get(f"/f/{token}")
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert "wait a minute" in limited.text
    # Other links from the same client run into the client's own limit.
    others = [pages.get(f"/f/{links.token_for('x', str(n))}").status_code for n in range(3)]
    assert others[-1] == 429


def test_when_intake_cannot_answer_the_patient_is_asked_to_try_again(start_service):
    pages = start_service(PatientPagesService)  # no intake running on this vhost
    answer = httpx.get(f"{web_address(pages)}/f/{links.token_for('x', 'y')}", timeout=30)
    assert answer.status_code == 503 and "try again" in answer.text
