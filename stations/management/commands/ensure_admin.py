"""Create the first admin account if there is none, and say how to log in."""

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create an admin account (once) and print how to log in."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username: str, **options) -> None:
        users = get_user_model()
        if users.objects.filter(is_superuser=True).exists():
            self.stdout.write(
                "An admin account exists already; log in at http://127.0.0.1:8000/ "
                "(reset a password: .venv/bin/python manage.py changepassword NAME)."
            )
            return

        password = secrets.token_urlsafe(12)
        users.objects.create_superuser(username=username, password=password, email="")
        self.stdout.write(
            self.style.SUCCESS(
                "Admin account created. Log in at http://127.0.0.1:8000/ as "
                f"user {username!r} with password {password!r} (shown only now)."
            )
        )
