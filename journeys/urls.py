from django.urls import path

from journeys import views

app_name = "journeys"
urlpatterns = [
    path("", views.index, name="index"),
]
