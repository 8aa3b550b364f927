"""Signing in (an API key exchanged once for a session cookie) and signing out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from secmon.api.deps import ServicesDep
from secmon.console.web import COOKIE, CsrfChecked, page

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/login", response_class=HTMLResponse)
async def sign_in_form(request: Request, next: str = "/") -> HTMLResponse:
    return page(request, "login.html", None, next=local_path(next))


@router.post("/login", response_model=None)
async def sign_in(
    request: Request, services: ServicesDep, api_key: Annotated[str, Form()], next: Annotated[str, Form()] = "/"
) -> Response:
    """Exchange ``api_key`` for a session cookie, then go on to ``next``."""
    opened = await services.sessions.open(api_key.strip())
    if opened is None:
        return page(
            request,
            "login.html",
            None,
            status_code=401,
            next=local_path(next),
            error="That API key is unknown or revoked. Create one with: secmon apikey create --role analyst --name YOU",
        )
    token, _ = opened
    response = RedirectResponse(local_path(next), status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(services.sessions.lifetime.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout")
async def sign_out(request: Request, services: ServicesDep, session: CsrfChecked) -> RedirectResponse:
    token = request.cookies.get(COOKIE)
    if token:
        await services.sessions.end(token)
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return response


def local_path(target: str) -> str:
    """``target`` if it is a path of this site; "/" otherwise (no redirect to another site after sign-in)."""
    return target if target.startswith("/") and not target.startswith(("//", "/\\")) else "/"
