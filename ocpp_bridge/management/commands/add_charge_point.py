"""python manage.py add_charge_point ID --site NAME: a charger and its password."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from stations.models import Site
from stations.services import charge_point_create


class Command(BaseCommand):
    help = (
        "Register a charge point on a site and print its generated OCPP "
        "password (security profile 1) once."
    )

    def add_arguments(self, parser):
        parser.add_argument("identity", help="Charge point id, as in /ocpp/<id>.")
        parser.add_argument("--site", required=True, help="Site code or name.")

    def handle(self, *args, identity: str, site: str, **options):
        found = Site.objects.filter(Q(code__iexact=site) | Q(name__iexact=site))
        if found.count() != 1:
            known = ", ".join(Site.objects.values_list("code", flat=True)[:20])
            raise CommandError(f"No single site {site!r}. Sites: {known or 'none'}.")
        try:
            charge_point, password = charge_point_create(
                identity=identity, site=found.get()
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc

        self.stdout.write(
            f"Charge point {charge_point.identity} added to {found.get()}."
        )
        self.stdout.write(f"Password (shown once): {password}")
