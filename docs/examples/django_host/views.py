"""The Django host's home page."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def home(request: HttpRequest) -> HttpResponse:
    integrations = f"{settings.INTEGRATIONS_PREFIX}/integrations"
    return render(request, "home.html", {"user": request.user, "integrations": integrations})
