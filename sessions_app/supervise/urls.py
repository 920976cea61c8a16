from django.urls import path

import sessions_app.url_converters  # noqa: F401 (registers <project:…> and <session:…>)
from sessions_app.supervise import views
from sessions_app.webhooks import views as webhook_views

app_name = "supervise"

urlpatterns = [
    path("", views.index, name="index"),
    path("p/<project:project_id>/", views.sessions, name="sessions"),
    path("p/<project:project_id>/dashboard/", views.dashboard, name="dashboard"),
    path("p/<project:project_id>/webhooks/", webhook_views.webhooks, name="webhooks"),
    path("p/<project:project_id>/s/<session:name>/", views.timeline, name="timeline"),
    path(
        "p/<project:project_id>/s/<session:name>/received/<int:version>/",
        views.as_received,
        name="as_received",
    ),
    path(
        "p/<project:project_id>/s/<session:name>/export.jsonl",
        views.export,
        {"fmt": "jsonl"},
        name="export_jsonl",
    ),
    path(
        "p/<project:project_id>/s/<session:name>/export.csv",
        views.export,
        {"fmt": "csv"},
        name="export_csv",
    ),
]
