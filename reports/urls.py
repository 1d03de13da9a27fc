from django.urls import path

from reports import views

app_name = "reports"
urlpatterns = [
    path("", views.index, name="index"),
    path("circles/<slug:circle>/figures/", views.circle_figures, name="circle_figures"),
    path("<slug:slug>/", views.report, name="report"),
    path("<slug:slug>/<slug:block>.<str:fmt>", views.report_download, name="download"),
]
