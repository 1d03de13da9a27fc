from django.urls import path

from experience import views

app_name = "experience"
urlpatterns = [
    path("", views.index, name="index"),
]
