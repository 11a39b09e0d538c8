"""DRF token authentication that also takes ``Authorization: Bearer <token>``.

DRF's ``TokenAuthentication`` expects the ``Token`` keyword; API clients (nocrud's
``ctx.login`` among them) send ``Bearer``. Both are accepted; 401 answers name ``Bearer``.
"""

from rest_framework.authentication import TokenAuthentication


class BearerTokenAuthentication(TokenAuthentication):
    keyword = "Bearer"
