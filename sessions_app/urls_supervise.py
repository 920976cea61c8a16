app_name = "supervise"

urlpatterns: list = []
