"""djangoshop's API tests on nocrud's pytest fixtures: each test its own app and database.

``api`` (nocrud's HTTP client on the test's own app) and ``db`` (a psycopg2 connection to
the test's own database, as the app's role) come from the ``nocrud`` pytest plugin; this
file only adds signing in. The folder is not in the repository's testpaths: it needs
Docker and runs through tests/e2e/test_django_example_e2e.py, or by hand:

    pytest examples/django/pytest_suite --nocrud-config examples/django -n 4
"""

import pytest

from nocrud import bearer_login


@pytest.fixture
def manager(api):
    """``api`` signed in as the seeded catalog manager (migration accounts/0007)."""
    password = "manager-password"  # noqa: S105 - the seeded example user's, in the migration
    bearer_login(api, "/api/auth/token/", username="manager", password=password)
    return api
