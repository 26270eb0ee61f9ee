from django.apps import AppConfig


class ApiAccessConfig(AppConfig):
    """API keys, permissions, rate limits and the error shape of the REST API."""

    name = "api_access"
    verbose_name = "API access"
