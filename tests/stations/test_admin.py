import pytest
from django.urls import reverse


@pytest.mark.parametrize(
    "model",
    [
        "stations/site",
        "stations/chargepoint",
        "stations/connector",
        "stations/statusevent",
        "charging/fleet",
        "charging/vehicle",
        "charging/idtoken",
        "charging/chargingsession",
        "charging/metersample",
    ],
)
def test_staff_can_open_every_admin_list_and_add_page(
    staff_client, charge_point, model
):
    app, name = model.split("/")

    changelist = staff_client.get(reverse(f"admin:{app}_{name}_changelist"))
    add = staff_client.get(reverse(f"admin:{app}_{name}_add"))

    assert changelist.status_code == 200
    assert add.status_code == 200


def test_operator_without_staff_flag_cannot_use_the_admin(operator_client):
    response = operator_client.get(reverse("admin:stations_site_changelist"))

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
