from django.urls import path

from reports import views, views_rfm, views_subscriptions

app_name = "reports"
urlpatterns = [
    path("", views.index, name="index"),
    path("circles/<slug:circle>/figures/", views.circle_figures, name="circle_figures"),
    path("subscriptions/", views_subscriptions.subscriptions, name="subscriptions"),
    path(
        "subscriptions/<int:pk>/toggle/",
        views_subscriptions.subscription_toggle,
        name="subscription_toggle",
    ),
    path("customers/rfm/<int:recency>/<int:frequency>/", views_rfm.rfm_cell, name="rfm_cell"),
    path("<slug:slug>/", views.report, name="report"),
    path("<slug:slug>/<slug:block>.<str:fmt>", views.report_download, name="download"),
]
