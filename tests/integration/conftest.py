"""Fixtures the integration tests share."""
from __future__ import annotations

import httpx
import pytest
from nameko.standalone.rpc import ClusterRpcProxy

from gateway.service import GatewayService
from services.intake.service import IntakeService
from services.sessions.service import SessionsService
from tests.conftest import web_address


@pytest.fixture
def clinic(start_service, clinic_config):
    """Intake and sessions behind the gateway: an RPC proxy acting as a
    clinician, and an HTTP client on the gateway. (A module may declare a
    ``clinic`` of its own with other services.)"""
    start_service(IntakeService)
    start_service(SessionsService)
    gateway = start_service(GatewayService)
    with ClusterRpcProxy(clinic_config, context_data={"actor": "dr.who (clinician)"}) as rpc, \
            httpx.Client(base_url=web_address(gateway), timeout=15) as api:
        yield rpc, api
