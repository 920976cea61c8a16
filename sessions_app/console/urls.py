from django.urls import path

from sessions_app.console import views

app_name = "console"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("presence/", views.presence, name="presence"),
    path("p/<str:project_id>/s/<str:name>/", views.session_view, name="session"),
    path("p/<str:project_id>/s/<str:name>/updates/", views.session_updates, name="updates"),
    path("p/<str:project_id>/s/<str:name>/claim/", views.claim, name="claim"),
    path("p/<str:project_id>/s/<str:name>/reply/", views.reply, name="reply"),
    path("p/<str:project_id>/s/<str:name>/hand-back/", views.hand_back, name="hand_back"),
    path("p/<str:project_id>/s/<str:name>/transfer/", views.transfer, name="transfer"),
    path("p/<str:project_id>/s/<str:name>/resolve/", views.resolve, name="resolve"),
    path("p/<str:project_id>/s/<str:name>/note/", views.note, name="note"),
    path("p/<str:project_id>/s/<str:name>/take-over/", views.take_over, name="take_over"),
    path("p/<str:project_id>/s/<str:name>/reassign/", views.reassign, name="reassign"),
    path("p/<str:project_id>/s/<str:name>/release/", views.release, name="release"),
]
