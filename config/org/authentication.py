"""DRF authentication of integrations by API token (``Authorization: Bearer cc_…``).

The request's user becomes an :class:`IntegrationPrincipal`: an editor of the token's
department and nothing more, so department-scoping code keeps working, and it is never a
staff user (no session, no admin, no superuser). Only endpoints that list
:class:`ApiTokenAuthentication` accept tokens; everywhere else a token is not a login.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from config.org.models import ApiToken, DepartmentRoles, Role
from config.org.tokens import api_token_authenticate

KEYWORDS = ("bearer", "token")


class IntegrationPrincipal(DepartmentRoles):
    """Who is asking when an integration calls with a token: an editor of one department."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_superuser = False
    is_staff = False

    def __init__(self, token: ApiToken) -> None:
        self.token = token
        # DRF's throttles key on ``user.pk``: one bucket per token, never shared.
        self.pk = self.id = f"token:{token.pk}"
        self.roles_by_department = {token.department_id: Role.EDITOR.value}

    def has_perm(self, perm: str, obj=None) -> bool:
        return False

    def get_username(self) -> str:
        return str(self)

    def __str__(self) -> str:
        return f"token:{self.token.prefix}"


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <token>`` (or ``Token <token>``) → the token's principal."""

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].decode("latin-1").lower() not in KEYWORDS:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Invalid Authorization header: use 'Authorization: Bearer <token>'."
            )
        try:
            raw = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token: not ASCII.") from None
        token = api_token_authenticate(raw)
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API token.")
        return IntegrationPrincipal(token), token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """Lists the bearer token in the OpenAPI schema of the endpoints that accept it."""

    target_class = "config.org.authentication.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "cc_<prefix>_<secret>",
            "description": (
                "An API token created on /settings/tokens/ by a manager of the department; "
                "also accepted as 'Authorization: Token <token>'."
            ),
        }
