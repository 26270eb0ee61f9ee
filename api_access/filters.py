"""Filter pieces shared by the API's filter sets."""

import copy
from datetime import UTC, date
from typing import Any, ClassVar

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


class LeanFilterSetMixin:
    """Makes a django-filter FilterSet cheap to build for each request.

    django-filter deep-copies every declared filter for each request, and with
    each ModelChoiceFilter its queryset (a deep copy of the whole SQL query), then
    builds a new form class. On the session list that was about 0.9 ms of the
    5.3 ms of CPU a page took. Filters carry no per-request state besides their
    parent and model, so a shallow copy each is enough; the form class depends
    only on the declared filters, so it is built once per filter set class (each
    form instance still copies its fields, as every Django form does).
    """

    _form_classes: ClassVar[dict[type, type]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        declared = type(self).base_filters
        # The library copies base_filters deeply: give it nothing to copy.
        self.base_filters = {}
        super().__init__(*args, **kwargs)
        del self.base_filters

        model = self.queryset.model
        self.filters = {}
        for name, filter_ in declared.items():
            filter_ = copy.copy(filter_)
            if filter_.method is not None:
                # Bind the filter's method to this copy (and so to this parent).
                filter_.method = filter_.method
            filter_.model = model
            filter_.parent = self
            self.filters[name] = filter_

    def get_form_class(self) -> type:
        form_class = self._form_classes.get(type(self))
        if form_class is None:
            form_class = super().get_form_class()
            self._form_classes[type(self)] = form_class
        return form_class
