"""The registry in the app: the lots that hold the person's grams, and an inclusion proof for each.

Thin views: validate, call one selector, serialize.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from registry import selectors


class MyLotOutput(serializers.Serializer):
    lot_id = serializers.UUIDField(source="lot.public_id")
    title = serializers.CharField(source="lot.title")
    status = serializers.CharField(source="lot.status")
    period_start = serializers.DateField(source="lot.period_start")
    period_end = serializers.DateField(source="lot.period_end")
    serial_first = serializers.CharField(source="lot.serial_first")
    serial_last = serializers.CharField(source="lot.serial_last")
    merkle_root = serializers.CharField(source="lot.merkle_root")
    contributor_id = serializers.CharField(help_text="The person's pseudonym in this lot's published list.")
    carbon_mg = serializers.IntegerField(help_text="The person's grams in the lot (mg CO2e).")


class ProofStepOutput(serializers.Serializer):
    side = serializers.ChoiceField(choices=["left", "right"])
    hash = serializers.CharField()


class InclusionProofOutput(serializers.Serializer):
    lot_id = serializers.UUIDField(source="lot.public_id")
    merkle_root = serializers.CharField(source="lot.merkle_root")
    contributor_id = serializers.CharField()
    carbon_mg = serializers.IntegerField()
    line = serializers.CharField(help_text="The leaf's line: `<lot id>|<contributor id>|<carbon mg>`.")
    leaf_index = serializers.IntegerField()
    leaf_count = serializers.IntegerField()
    proof = ProofStepOutput(many=True, help_text="Sibling hashes from the leaf up (docs/registry.md).")


class MyLotsApi(APIView):
    """The lots that hold the person's grams, newest first, with their share of each."""

    @extend_schema(responses=MyLotOutput(many=True), operation_id="registry_my_lots")
    def get(self, request: Request) -> Response:
        return Response(MyLotOutput(selectors.contributions_of(user=request.user), many=True).data)


class LotProofApi(APIView):
    """The proof that the person's share is in the lot's published Merkle root."""

    @extend_schema(responses=InclusionProofOutput, operation_id="registry_lot_proof")
    def get(self, request: Request, lot_id) -> Response:
        proof = selectors.inclusion_proof_for(user=request.user, lot_public_id=lot_id)
        return Response(InclusionProofOutput(proof).data)
