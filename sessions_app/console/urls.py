from django.urls import path

import sessions_app.url_converters  # noqa: F401 (registers <project:…> and <session:…>)
from sessions_app.console import views

app_name = "console"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("presence/", views.presence, name="presence"),
    path("p/<project:project_id>/s/<session:name>/", views.session_view, name="session"),
    path("p/<project:project_id>/s/<session:name>/updates/", views.session_updates, name="updates"),
    path("p/<project:project_id>/s/<session:name>/claim/", views.claim, name="claim"),
    path("p/<project:project_id>/s/<session:name>/reply/", views.reply, name="reply"),
    path("p/<project:project_id>/s/<session:name>/hand-back/", views.hand_back, name="hand_back"),
    path("p/<project:project_id>/s/<session:name>/transfer/", views.transfer, name="transfer"),
    path("p/<project:project_id>/s/<session:name>/resolve/", views.resolve, name="resolve"),
    path("p/<project:project_id>/s/<session:name>/note/", views.note, name="note"),
    path("p/<project:project_id>/s/<session:name>/take-over/", views.take_over, name="take_over"),
    path("p/<project:project_id>/s/<session:name>/reassign/", views.reassign, name="reassign"),
    path("p/<project:project_id>/s/<session:name>/release/", views.release, name="release"),
]
