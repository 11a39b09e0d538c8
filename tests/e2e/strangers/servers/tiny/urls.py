"""One view: ``/health`` answers with the serving process's id and how many requests it served.

Both tell whether a reset renewed the app's process state: a new process, a count from 1.
"""

import os

from django.http import JsonResponse
from django.urls import path

served = {"requests": 0}


def health(request):
    served["requests"] += 1
    return JsonResponse({"pid": os.getpid(), "served": served["requests"]})


urlpatterns = [path("health", health)]
