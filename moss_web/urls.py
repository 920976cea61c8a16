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

# Uncaught errors outside the API (which maps its own): a short 503 page while
# the database is down, a short 500 page otherwise.
handler500 = "moss_web.outages.server_error"
