"""API personas (anonymous, read-only key, read-write key, staff session) and a
stand-in for the OCPP command service while its branch is not merged."""

import importlib.machinery
import importlib.util
import sys
import types
from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from api_access.models import ApiKey, ApiKeyScope

if importlib.util.find_spec("ocpp_bridge.commands") is None:
    # Test double of ocpp_bridge.commands (interface in notes/interfaces.md),
    # only while the real module is absent: every charger is "not connected".
    _double = types.ModuleType("ocpp_bridge.commands")
    _double.__spec__ = importlib.machinery.ModuleSpec("ocpp_bridge.commands", None)

    @dataclass
    class CommandResult:
        outcome: str
        response: dict | None = None
        error_code: str = ""
        error_description: str = ""
        command_id: int | None = None

    def command_send(
        *, charge_point, action, payload, requested_by=None, timeout_s=None
    ):
        return CommandResult(outcome="not_connected")

    _double.CommandResult = CommandResult
    _double.command_send = command_send
    _double.ACTIONS = {
        name: None
        for name in (
            "RemoteStartTransaction RemoteStopTransaction Reset UnlockConnector "
            "ChangeAvailability ChangeConfiguration GetConfiguration ClearCache "
            "TriggerMessage DataTransfer UpdateFirmware GetDiagnostics SendLocalList "
            "GetLocalListVersion ReserveNow CancelReservation SetChargingProfile "
            "ClearChargingProfile GetCompositeSchedule"
        ).split()
    }
    sys.modules["ocpp_bridge.commands"] = _double


@pytest.fixture(autouse=True)
def _api_limits(settings):
    # Limits are tested on purpose in test_rate_limits.py; elsewhere they are off.
    settings.API_RATE_PER_KEY = ""
    settings.API_RATE_PER_ADDRESS = ""
    settings.LOGIN_RATE_PER_ADDRESS = ""


@pytest.fixture
def read_only_key(db) -> tuple[ApiKey, str]:
    return ApiKey.objects.create_key(name="reporting", scope=ApiKeyScope.READ_ONLY)


@pytest.fixture
def read_write_key(db) -> tuple[ApiKey, str]:
    return ApiKey.objects.create_key(name="automation", scope=ApiKeyScope.READ_WRITE)


@pytest.fixture
def anonymous_api() -> APIClient:
    return APIClient()


@pytest.fixture
def read_only_api(read_only_key) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {read_only_key[1]}")
    return client


@pytest.fixture
def read_write_api(read_write_key) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {read_write_key[1]}")
    return client


@pytest.fixture
def staff_api(staff_user) -> APIClient:
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(staff_user)
    client.get("/accounts/login/")  # sets the CSRF cookie a browser would have
    client.credentials(HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)
    return client
