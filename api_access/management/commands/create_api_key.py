"""Create an API key from the command line; the key is printed once.

    python manage.py create_api_key "nightly export" [--scope read_write]

The same as Admin -> API keys -> Add, for scripts and first set-ups.
"""

import logging

from django.core.management.base import BaseCommand, CommandParser

from api_access.models import ApiKey, ApiKeyScope

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Create an API key and print it once (only its hash is stored)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="What uses the key, e.g. 'nightly export'.")
        parser.add_argument(
            "--scope",
            choices=[choice.value for choice in ApiKeyScope],
            default=ApiKeyScope.READ_ONLY,
            help="read_only (every GET, the default) or read_write.",
        )

    def handle(self, *args, name: str, scope: str, **options) -> None:
        api_key, key = ApiKey.objects.create_key(name=name, scope=scope)

        logger.info(
            "API key created on the command line",
            extra={"api_key": api_key.prefix, "scope": scope},
        )
        self.stderr.write(
            f"API key '{name}' ({scope}) created. It is shown only now; "
            "send it as 'Authorization: Api-Key <key>':"
        )
        self.stdout.write(key)
