"""A UI team generates its client from the OpenAPI document: a Python one
generated here with openapi-python-client must compile, import, and read
the answers as typed models (no untyped ``{}`` left for a route)."""
import compileall
import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import gateway.service  # noqa: F401 - declares every route
from gateway.http import ROUTES
from gateway.openapi import document

# What the README tells a UI team to generate with (the chart comes as its SVG text).
CLIENT_SETTINGS = Path(__file__).resolve().parents[3] / "docs" / "openapi-python-client.yaml"
GENERATOR = shutil.which("openapi-python-client", path=str(Path(sys.executable).parent)) or shutil.which(
    "openapi-python-client")


def test_every_success_answer_is_a_named_schema():
    paths = document()["paths"]
    untyped = [f"{spec.method} {spec.path}" for spec in ROUTES
               for content in paths[spec.path][spec.method.lower()]["responses"][str(spec.status)]["content"].values()
               if not content["schema"]]
    assert untyped == []


@pytest.mark.skipif(GENERATOR is None, reason="openapi-python-client is not installed (bin/setup installs it)")
def test_a_typed_client_generated_from_the_document_compiles_and_reads_answers(tmp_path):
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps(document()))
    target = tmp_path / "clinic_client"
    environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run([GENERATOR, "generate", "--path", str(spec), "--output-path", str(target),
                             "--meta", "none", "--config", str(CLIENT_SETTINGS)],
                            capture_output=True, text=True, timeout=300, env=environment)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr
    assert compileall.compile_dir(str(target), quiet=1)

    sys.path.insert(0, str(tmp_path))
    try:
        models = importlib.import_module("clinic_client.models")
        page = models.PatientPage.from_dict({
            "items": [{"patient_id": "p1", "mrn": "MRN0000001", "given_name": "Ana", "family_name": "Lopez",
                       "date_of_birth": "1980-02-03", "sex": "female", "phone": None, "email": None,
                       "time_zone": "America/Los_Angeles", "diagnosis_codes": [], "emergency_contact": None,
                       "weight_kg": 70.5, "height_cm": None, "primary_condition": "ptsd", "intake_status": None,
                       "created_at": "2026-11-27T08:00:00Z", "updated_at": None}],
            "total": 1, "limit": 20, "offset": 0})
        assert isinstance(page.items[0], models.PatientView)
        assert page.items[0].date_of_birth.year == 1980
        importlib.import_module("clinic_client.api.patients.get_patient")
        importlib.import_module("clinic_client.api.fhir.export_fhir")
        chart = importlib.import_module("clinic_client.api.outcomes.get_outcomes_chart")
        assert "str" in str(chart.sync.__annotations__["return"])  # the SVG text
    finally:
        sys.path.remove(str(tmp_path))
        for name in [name for name in sys.modules if name.startswith("clinic_client")]:
            del sys.modules[name]
