from django.apps import AppConfig


class OcppBridgeConfig(AppConfig):
    name = "ocpp_bridge"
    verbose_name = "OCPP bridge"
