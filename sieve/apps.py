from django.apps import AppConfig


class SieveConfig(AppConfig):
    name = "sieve"

    def ready(self):
        from sieve import sqlite

        sqlite.connect()
