"""The Django host's own pages: home, sign-in and sign-out."""

from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    # LoginView follows `next` only within this site (url_has_allowed_host_and_scheme
    # refuses //evil.example/ and https://evil.example/); else LOGIN_REDIRECT_URL.
    path("login", auth_views.LoginView.as_view(), name="login"),
    path("logout", auth_views.LogoutView.as_view(), name="logout"),
]
