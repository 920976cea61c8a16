from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(url="/console/", permanent=False), name="home"),
    path("console/", include("sessions_app.console.urls")),
    path("supervise/", include("sessions_app.supervise.urls")),
]
