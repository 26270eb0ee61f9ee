import pytest
from django.conf import settings
from django.urls import reverse


@pytest.mark.parametrize(
    "url",
    [
        "/",
        "/stations/",
        "/stations/CP-1/",
        "/sessions/",
        "/sessions/export.csv",
        "/sessions/1/",
    ],
)
def test_an_anonymous_visitor_is_sent_to_login(client, charge_point, url):
    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse(settings.LOGIN_URL)}?next={url}"


def test_the_navigation_offers_admin_to_staff_only(operator_client, staff_user, client):
    operator_page = operator_client.get(reverse("dashboard")).content.decode()
    client.force_login(staff_user)
    staff_page = client.get(reverse("dashboard")).content.decode()

    for label in ["Dashboard", "Stations", "Sessions", "Forecasts", "Fleet insights"]:
        assert f">{label}</a>" in operator_page
    assert 'href="/api/docs/"' in operator_page and 'href="/alerts/"' in operator_page
    assert ">Admin</a>" not in operator_page
    assert ">Admin</a>" in staff_page
