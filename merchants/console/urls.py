"""The merchant console's routes, mounted at /console/ by config/urls.py."""

from django.urls import path

from merchants.console import views

app_name = "console"

urlpatterns = [
    path("", views.home, name="home"),
    path("sign-in/", views.sign_in, name="sign-in"),
    path("sign-out/", views.sign_out, name="sign-out"),
    path("language/", views.language, name="language"),
    path("offers/new/", views.offer_create, name="offer-create"),
    path("offers/<uuid:offer_id>/", views.offer_edit, name="offer-edit"),
    path("offers/<uuid:offer_id>/<slug:action>/", views.offer_action, name="offer-action"),
    path("staff/", views.staff_list, name="staff"),
    path("staff/<uuid:staff_id>/remove/", views.staff_remove, name="staff-remove"),
    path("staff/<uuid:staff_id>/role/", views.staff_role, name="staff-role"),
    path("reports/", views.reports, name="reports"),
    path("reports.csv", views.reports_csv, name="reports-csv"),
    path("verify/", views.verify, name="verify"),
]
