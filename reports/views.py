from django.http import HttpResponse


def index(request):
    return HttpResponse("todo")


def home(request):
    return HttpResponse("todo")
