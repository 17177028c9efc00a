"""What every app's admin builds on (core is not an installed app: nothing here is registered)."""

from __future__ import annotations

import uuid

from django import forms
from django.contrib import admin
from django.contrib.admin import widgets
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import ValidationError
from django.db import models
from django.http import HttpRequest


class ReadOnlyAdminMixin:
    """History and evidence: operators look and search, they never add, change or delete here."""

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class ReadOnlyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """A model admin for rows that must not change by hand."""


class ChangedFieldsAdminMixin:
    """A change made in the admin writes only the fields the operator changed.

    Django's change form saves the whole row as the page read it, the fields it shows read-only
    too: a counter, a total paid or a status that a job or a request changed while the page was
    open would be written back as the page saw it (a challenge paid twice from its budget, a
    group's member count off by one). Here a change is an UPDATE of the changed fields, and of
    those that stamp themselves (`auto_now`); adding a row saves it whole, as Django does.
    """

    def save_model(self, request: HttpRequest, obj: models.Model, form, change: bool) -> None:
        if not change:
            super().save_model(request, obj, form, change)
            return
        changed = set(form.changed_data)
        fields = [
            field.name
            for field in obj._meta.concrete_fields
            if not field.primary_key and (field.name in changed or getattr(field, "auto_now", False))
        ]
        if any(name in changed for name in fields):
            obj.save(update_fields=fields)


class _SelectedValuesThatFit:
    """An autocomplete that draws the options it was sent back with only from values its key can
    hold: Django's looks them up as they came, so a form returned with a value that is no id (a
    hand-made request, a tool) was a server error instead of the field's own error."""

    def optgroups(self, name, value, attr=None):
        remote = self.field.remote_field
        key = remote.model._meta.get_field(getattr(remote, "field_name", None) or remote.model._meta.pk.name)

        def fits(raw) -> bool:
            try:
                key.to_python(raw)
            except ValidationError:
                return False
            return True

        return super().optgroups(name, [raw for raw in value if fits(raw)], attr)


class AutocompleteSelect(_SelectedValuesThatFit, widgets.AutocompleteSelect):
    pass


class AutocompleteSelectMultiple(_SelectedValuesThatFit, widgets.AutocompleteSelectMultiple):
    pass


class ModelAdmin(ChangedFieldsAdminMixin, admin.ModelAdmin):
    """The model admin of every page where operators change rows by hand."""

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = AutocompleteSelect(db_field, self.admin_site, using=kwargs.get("using"))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request: HttpRequest, **kwargs):
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = AutocompleteSelectMultiple(
                db_field, self.admin_site, using=kwargs.get("using")
            )
        return super().formfield_for_manytomany(db_field, request, **kwargs)


def one_time_key_field() -> forms.UUIDField:
    """A form's one-time key: a new one each time the page is drawn, hidden, sent back with it.

    A page whose submission has an effect (coins moved, tonnes sold) keys the effect by it, so the
    same page sent twice (a double click, a browser resending it) acts once; drawing the page
    again asks anew."""
    return forms.UUIDField(widget=forms.HiddenInput, initial=uuid.uuid4, label="")


class OneTimeKeyActionForm(ActionForm):
    """The changelist's actions with the page's one-time key (`request_key`), for actions that key
    their effect by it (`one_time_key`)."""

    request_key = one_time_key_field()
    request_key.required = False


def one_time_key(request: HttpRequest) -> uuid.UUID | None:
    """The one-time key the submitted page carried, or None when it carried none or a malformed one."""
    try:
        return uuid.UUID(request.POST.get("request_key", ""))
    except ValueError:
        return None
