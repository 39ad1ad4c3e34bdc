from django.urls import path

from review import invitation_views as views

app_name = "invitations"
urlpatterns = [
    path("pending/<int:pk>/accept/", views.accept_listed, name="accept_listed"),
    path("pending/<int:pk>/decline/", views.decline_listed, name="decline_listed"),
    path("<str:token>/", views.show, name="show"),
    path("<str:token>/accept/", views.accept, name="accept"),
    path("<str:token>/decline/", views.decline, name="decline"),
    path("<str:token>/join/", views.join, name="join"),
]
