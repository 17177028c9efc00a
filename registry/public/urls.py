"""The public registry: server-rendered pages, no sign-in, in Chinese and English (`?lang=en`)."""

from django.urls import path

from registry.public import views

app_name = "registry"

urlpatterns = [
    path("", views.lots, name="lots"),
    path("lots/<uuid:lot_id>/", views.lot, name="lot"),
    path("lots/<uuid:lot_id>/contributions.csv", views.lot_contributions, name="lot-contributions"),
    path("retirements/<uuid:retirement_id>/", views.retirement, name="retirement"),
    path(
        "retirements/<uuid:retirement_id>/certificate.png",
        views.retirement_certificate,
        name="retirement-certificate",
    ),
]
