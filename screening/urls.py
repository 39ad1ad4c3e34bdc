from django.urls import path

app_name = "screening"
urlpatterns = []
