from django.apps import AppConfig


class ChargingConfig(AppConfig):
    """Fleets, vehicles, id tokens, charging sessions and meter samples.

    The label is ``charging`` because ``sessions`` belongs to
    ``django.contrib.sessions``.
    """

    name = "sessions"
    label = "charging"
    verbose_name = "Charging"
