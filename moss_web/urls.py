from django.contrib import admin
from django.urls import include, path

from moss_web.api import api
from sessions_app import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("api/v1/", api.urls),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("sessions_app.urls")),
]

handler400 = "moss_web.error_views.bad_request"
handler404 = "moss_web.error_views.not_found"
# A short 503 page (JSON under /api/) while the database is down, a 500 otherwise.
handler500 = "moss_web.outages.server_error"
