"""Dependency aliases for routes: the context, a database session, the caller's identity."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from switchyard.api.auth import Principal, Role, TokenTable
from switchyard.api.context import ApiContext
from switchyard.api.problems import ApiError
from switchyard.db.engine import unit_of_work


def get_context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


ContextDep = Annotated[ApiContext, Depends(get_context)]


def get_session(ctx: ContextDep) -> Iterator[Session]:
    """One unit of work per request: commits if the route returns, rolls back if it raises."""
    with unit_of_work(ctx.engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]

_bearer = HTTPBearer(auto_error=False)
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise ApiError(
            401,
            "unauthenticated",
            "a bearer token is required",
            field="header.Authorization",
            headers=_CHALLENGE,
        )
    # Every app built by us keeps its token table on app.state (the control-plane API and the
    # dialog runtime share this dependency).
    tokens: TokenTable = request.app.state.tokens
    principal = tokens.authenticate(credentials.credentials)
    if principal is None:
        raise ApiError(
            401,
            "invalid_token",
            "the bearer token is not valid",
            field="header.Authorization",
            headers=_CHALLENGE,
        )
    return principal


def require(role: Role) -> Callable[[Principal], Principal]:
    """A dependency that admits principals holding ``role`` or a higher one."""

    def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if principal.role < role:
            raise ApiError(
                403,
                "forbidden",
                f"this action needs the {role.label} role; the token has {principal.role.label}",
            )
        return principal

    return check


Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
