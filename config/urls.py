"""The URL map: the API under /api/v1/, sign-in under /_allauth/, docs, admin, probes."""

from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts.allauth_schema import allauth_specification_json, allauth_specification_yaml
from activities.statements.apis import JwksApi
from core.api.health import healthz, readyz
from core.api.routing import api_path
from operations.admin_dashboard import admin_dashboard, night_jobs_run

api_v1 = [
    path("", include("accounts.urls")),
    path("", include("activities.urls")),
    path("", include("rewards.urls")),
    path("", include("merchants.urls")),
    path("", include("registry.urls")),
]

urlpatterns = [
    # Resolved by first segment: the app's reads try only their own routes (core/api/routing.py).
    api_path("api/v1/", api_v1, app_name="api", namespace="v1"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("accounts.allauth_routes")),
    # allauth's sign-in specification, as true of this platform (accounts/allauth_schema.py).
    path("_allauth/openapi.json", allauth_specification_json, name="allauth-schema"),
    path("_allauth/openapi.yaml", allauth_specification_yaml, name="allauth-schema-yaml"),
    path("_allauth/", include("allauth.headless.urls")),
    path("admin/dashboard/", admin.site.admin_view(admin_dashboard), name="admin-dashboard"),
    path("admin/dashboard/run-tonight/", admin.site.admin_view(night_jobs_run), name="admin-night-jobs-run"),
    path("admin/", admin.site.urls),
    path("console/", include("merchants.console.urls")),
    # The public keys of signed statements (docs/interop.md), where verifiers look for them.
    path(".well-known/jwks.json", JwksApi.as_view(), name="jwks"),
    path("registry/", include("registry.public.urls")),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
]

# Under /api/ and /_allauth/ Django's own error answers are the envelope too.
handler400 = "core.api.handlers.bad_request"
handler403 = "core.api.handlers.permission_denied"
handler404 = "core.api.handlers.page_not_found"
handler500 = "core.api.handlers.server_error"

if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)

admin.site.site_header = "Carbon Account operations"
admin.site.site_title = "Carbon Account"
admin.site.index_title = "Operations"
