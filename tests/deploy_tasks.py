"""A task for tests/test_deploy.py: the worker that runs it says who it is and where it looks."""

import os

from django.db import connection
from django_tasks import task


@task()
def where_am_i():
    return {"pid": os.getpid(), "database": connection.settings_dict["NAME"]}
