"""Filter pieces shared by the API's filter sets."""

from datetime import UTC, date

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django_filters.fields import IsoDateTimeField


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 instant, handed to the database in UTC.

    Python accepts offsets up to 24 h and years 1..9999; PostgreSQL refuses
    offsets past 15:59, and moving year 1 or 9999 across an offset overflows.
    Both are the caller's bad input (400), never a database error.
    """

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        try:
            return value.astimezone(UTC)
        except OverflowError as exc:
            raise ValidationError("The time is out of range.", code="invalid") from exc


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class BoundedDateField(forms.DateField):
    """A calendar day with a day to spare at both ends of Python's calendar, so
    that turning it into the bounds of a local day cannot overflow."""

    def to_python(self, value):
        value = super().to_python(value)
        if value is not None and not (date.min < value < date.max):
            raise ValidationError("The day is out of range.", code="invalid")
        return value


class BoundedDateFilter(django_filters.DateFilter):
    field_class = BoundedDateField
