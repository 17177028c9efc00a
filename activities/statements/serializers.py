"""The shapes of statements that routes of two apps share: the verify route here and the import
route in rewards (whose import mints coins) take the same body and show standards alike."""

from __future__ import annotations

from rest_framework import serializers

from activities.models import StandardCategory
from activities.statements.jws import MAX_TOKEN_LENGTH


class StandardOutput(serializers.Serializer):
    id = serializers.CharField(help_text="The standard, e.g. T/ACEF 031-2022.")
    category = serializers.ChoiceField(choices=StandardCategory.choices)
    behaviour = serializers.CharField(help_text="The behaviour as the standard names it.")


class StatementInput(serializers.Serializer):
    statement = serializers.CharField(max_length=MAX_TOKEN_LENGTH, help_text="The compact JWS.")
