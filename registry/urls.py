"""Registry routes under /api/v1/: a person's lots and their inclusion proofs."""

from django.urls import path

from registry import apis

urlpatterns = [
    path("registry/my-lots", apis.MyLotsApi.as_view(), name="registry-my-lots"),
    path("registry/lots/<uuid:lot_id>/proof", apis.LotProofApi.as_view(), name="registry-lot-proof"),
]
