"""What the users app's migrations share (a leading underscore: Django's loader skips this module)."""


def run_on_postgresql(statements):
    """A RunPython function that runs SQL statements on PostgreSQL and does nothing elsewhere (SQLite has no pg_trgm)."""

    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for statement in statements:
            schema_editor.execute(statement)

    return run
