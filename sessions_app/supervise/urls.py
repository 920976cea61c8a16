from django.urls import path

from sessions_app.supervise import views
from sessions_app.webhooks import views as webhook_views

app_name = "supervise"

urlpatterns = [
    path("", views.index, name="index"),
    path("p/<str:project_id>/", views.sessions, name="sessions"),
    path("p/<str:project_id>/dashboard/", views.dashboard, name="dashboard"),
    path("p/<str:project_id>/webhooks/", webhook_views.webhooks, name="webhooks"),
    path("p/<str:project_id>/s/<str:name>/", views.timeline, name="timeline"),
    path(
        "p/<str:project_id>/s/<str:name>/received/<int:version>/",
        views.as_received,
        name="as_received",
    ),
    path(
        "p/<str:project_id>/s/<str:name>/export.jsonl",
        views.export,
        {"fmt": "jsonl"},
        name="export_jsonl",
    ),
    path(
        "p/<str:project_id>/s/<str:name>/export.csv",
        views.export,
        {"fmt": "csv"},
        name="export_csv",
    ),
]
