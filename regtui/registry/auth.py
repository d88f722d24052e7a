"""Registry authentication as the runtimes do it: challenges, Basic, Bearer tokens, identity tokens.

Flow (distribution ``docs/spec/auth/token.md``, ``oauth.md``; containerd ``remotes/docker/authorizer.go``):

1. a request answered ``401`` carries ``WWW-Authenticate`` challenges (:func:`parse_challenges`);
   Bearer is preferred over Basic, as containerd does;
2. **Basic**: the endpoint's credentials are sent as ``Authorization: Basic``; without
   credentials the runtime stops with ``no basic auth credentials`` (``auth.missing``);
3. **Bearer**: a token is fetched from ``realm`` with ``service`` and ``scope``:
   - identity token (``Credential.kind == "identitytoken"``): ``POST`` form
     ``grant_type=refresh_token``; a ``404`` (and, for containerd, ``400/401/405``) means the token
     server has no OAuth endpoint, so the client falls back to ``GET``;
   - username/password: ``GET`` with Basic (Docker, containers/image); containerd ``POST``s
     ``grant_type=password`` first and falls back the same way;
   - no credentials: an anonymous ``GET`` (the token server grants what anonymous users may do);
   - a registry token (``registrytoken``) is sent as the Bearer token directly;
4. a second ``401`` with the token means the credentials were refused (``auth.rejected``), or,
   with an anonymous token, that the endpoint needs credentials (``auth.missing``).

Credentials belong to a host. The endpoint's own credentials answer only the endpoint host's
challenges (and go to the token realm that host names, as every runtime does). A challenge from
another host, reached through a redirect, is answered the way the runtime answers it:
containerd's authorizer looks credentials up for *that* host (``authorizer.go AddResponses:
a.credentials(host)``) and sends none when it has none; dockerd and containers/image only
authorize the hosts they pinged, so the request fails with the 401 there. Either way the
endpoint's credentials never go to the other host, nor do tokens fetched for one host go to
another; the challenge is kept in :attr:`AuthOutcome.redirects` for ``auth.redirect-challenge``.

The outcome is kept in :class:`AuthOutcome` (no secret in it) for the mirrors panel and the pull.
Tokens and passwords live only in this object and in request headers.
"""

from __future__ import annotations

import base64
import contextvars
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable
from urllib.parse import urlencode, urlsplit

import httpx

from regtui import redact
from regtui.credentials import Credential
from regtui.registry.errors import Failure, RegistryError, display_url

__all__ = ["Challenge", "parse_challenges", "AuthOutcome", "Authorizer", "TokenSender", "CredentialLookup",
           "MAX_TOKEN_RESPONSE"]

#: A token response larger than this is hostile.
MAX_TOKEN_RESPONSE = 1024 * 1024
#: Token lifetime when the server does not say (distribution's default).
DEFAULT_EXPIRES_IN = 60

#: ``(method, url, headers, form) -> response`` (body read, capped); provided by the session.
TokenSender = Callable[[str, str, dict[str, str], dict[str, str] | None], Awaitable[httpx.Response]]
#: ``host[:port] -> credentials`` the runtime sends to that host (``None``: none).
CredentialLookup = Callable[[str], Credential | None]
#: ``(authorizer, outcome)`` while a challenge from a host other than the endpoint's is answered.
_OTHER_HOST_OUTCOME: contextvars.ContextVar[tuple[Any, "AuthOutcome"] | None] = contextvars.ContextVar(
    "regtui_other_host_outcome", default=None)
#: Runtimes whose authorizer answers a challenge from any host it is sent to (with that host's credentials).
_PER_HOST_AUTHORIZER = ("containerd",)

_TOKEN = re.compile(r"\s*([!#$%&'*+\-.^_`|~0-9A-Za-z]+)")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Challenge:
    """One ``WWW-Authenticate`` challenge."""

    scheme: str
    """Lowercase: ``bearer`` or ``basic`` (others are kept but not answered)."""
    params: dict[str, str] = field(default_factory=dict)


def _parse_one(value: str) -> list[Challenge]:
    out: list[Challenge] = []
    pos, n = 0, len(value)
    current: Challenge | None = None
    while pos < n:
        while pos < n and value[pos] in " ,\t":
            pos += 1
        m = _TOKEN.match(value, pos)
        if not m:
            break  # garbage: keep what was parsed so far
        token, after = m.group(1), m.end()
        rest = value[after:].lstrip(" \t")
        if rest.startswith("=") and current is not None:
            after = n - len(rest) + 1
            while after < n and value[after] in " \t":
                after += 1
            q = _QUOTED.match(value, after)
            if q:
                val, pos = re.sub(r"\\(.)", r"\1", q.group(1)), q.end()
            else:
                end = value.find(",", after)
                end = n if end == -1 else end
                val, pos = value[after:end].strip(), end
            current.params[token.lower()] = val[:4096]
        else:
            current = Challenge(token.lower(), {})
            out.append(current)
            pos = after
    return out


def parse_challenges(values: list[str] | str) -> list[Challenge]:
    """All challenges in one or more ``WWW-Authenticate`` values; garbage yields what parses (maybe nothing)."""
    if isinstance(values, str):
        values = [values]
    out: list[Challenge] = []
    for value in values[:8]:
        out += _parse_one(value[:8192])
    return out


@dataclass
class AuthOutcome:
    """How authentication went with one endpoint (no secrets)."""

    status: str = "not-required"
    """``not-required``, ``ok``, ``missing``, ``rejected`` or ``failed`` (token server unreachable...)."""
    method: str = "none"
    """``none``, ``basic``, ``token-anonymous``, ``token-credentials``, ``token-identity``, ``registry-token``."""
    scheme: str | None = None
    """The challenge answered: ``bearer`` or ``basic``."""
    credentials: str | None = None
    """Where the credentials came from (``path:line (key)``), or ``None`` when none applied."""
    realm: str | None = None
    service: str | None = None
    token_request: str | None = None
    """How the token was asked for: ``GET``, ``POST``, ``POST 404 -> GET``."""
    detail: str = ""
    failure: Failure | None = None
    redirects: list[dict[str, Any]] = field(default_factory=list)
    """Challenges from hosts the endpoint redirected to: host, scheme, what the runtime sends, result."""

    @property
    def label(self) -> str:
        """One word for tables: ``anonymous``, ``basic``, ``token``, ``missing``, ``rejected``..."""
        if self.status in ("missing", "rejected", "failed"):
            return self.status
        return {"none": "anonymous", "token-anonymous": "anonymous token", "token-credentials": "token",
                "token-identity": "identity token", "registry-token": "registry token"}.get(self.method, self.method)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return redact.value({"status": self.status, "method": self.method, "label": self.label, "scheme": self.scheme,
                             "credentials": self.credentials, "realm": self.realm, "service": self.service,
                             "token_request": self.token_request, "detail": self.detail,
                             "redirects": [dict(r) for r in self.redirects]})


@dataclass
class _Token:
    value: str = field(repr=False)
    expires: float
    method: str


def _basic(username: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode()


class Authorizer:
    """Answers challenges for one endpoint: its host with the endpoint's credentials, other hosts as the runtime does.

    ``host`` is the endpoint's ``host[:port]`` (when omitted, the first host that challenges);
    ``lookup`` gives the credentials the runtime has for another host (containerd only asks it).
    """

    def __init__(self, credential: Credential | None, send: TokenSender, *, flavor: str = "docker",
                 clock: Callable[[], float] = time.monotonic, host: str | None = None,
                 lookup: CredentialLookup | None = None) -> None:
        self._credential = credential
        self._send = send
        self._flavor = flavor
        self._clock = clock
        self._host = host
        self._lookup = lookup
        self._handlers: dict[str, Challenge] = {}
        self._credentials: dict[str, Credential | None] = {}
        """The credentials answering each host's challenges (only hosts with a handler)."""
        self._tokens: dict[tuple[str, str, str, str], _Token] = {}
        self.outcome = AuthOutcome(credentials=credential.source if credential else None)
        self.realm_urls: list[str] = []
        """Token realm URLs contacted (full URL, for extra-endpoint evidence)."""

    # -- headers ---------------------------------------------------------------------------
    def authorization(self, host: str, scope: str) -> str | None:
        """The ``Authorization`` value for a request to ``host`` (``None`` before any challenge from it)."""
        challenge = self._handlers.get(host)
        if challenge is None:
            return None
        credential = self._credentials.get(host)
        if challenge.scheme == "basic" and credential is not None and credential.kind == "basic":
            return _basic(credential.username, credential.secret)
        if challenge.scheme == "bearer":
            token = self._tokens.get(self._token_key(host, challenge, scope))
            if token and token.expires > self._clock():
                return "Bearer " + token.value
        return None

    @staticmethod
    def _token_key(host: str, challenge: Challenge, scope: str) -> tuple[str, str, str, str]:
        return host, challenge.params.get("realm", ""), challenge.params.get("service", ""), scope

    # -- challenges ------------------------------------------------------------------------
    async def handle(self, host: str, response: httpx.Response, scope: str, sent_auth: bool) -> None:
        """Prepare credentials for a retry after ``response`` (a 401); raises when there is nothing to retry with."""
        if self._host is None:
            self._host = host
        if host != self._host:
            await self._handle_other_host(host, response, scope, sent_auth)
            return
        await self._handle(host, self._credential, response, scope, sent_auth)

    async def _handle(self, host: str, credential: Credential | None, response: httpx.Response, scope: str,
                      sent_auth: bool) -> None:
        url = str(response.request.url)
        challenges = parse_challenges(response.headers.get_list("www-authenticate"))
        bearer = next((c for c in challenges if c.scheme == "bearer" and c.params.get("realm")), None)
        basic = next((c for c in challenges if c.scheme == "basic"), None)
        out = self._out()
        out.status = "ok" if out.status == "not-required" else out.status
        if sent_auth:
            self._refused(url, response)
        if bearer is not None:
            await self._bearer(host, credential, bearer, scope)
        elif basic is not None:
            self._basic_challenge(host, credential, basic, url)
        else:
            self._fail("failed", "unauthorized", url, "HTTP 401 without a usable WWW-Authenticate challenge",
                       "unauthorized: authentication required", response.status_code)

    async def _handle_other_host(self, host: str, response: httpx.Response, scope: str, sent_auth: bool) -> None:
        """A 401 from a host the endpoint redirected to: never the endpoint's credentials, only that host's own."""
        url = str(response.request.url)
        challenges = parse_challenges(response.headers.get_list("www-authenticate"))
        scheme = next((c.scheme for c in challenges if c.scheme in ("bearer", "basic")), None)
        record = next((r for r in self.outcome.redirects if r["host"] == host), None)
        if record is None:
            record = {"origin": self._host, "host": host, "url": display_url(url), "scheme": scheme,
                      "credentials": None, "runtime_sends": "", "status": "failed", "detail": ""}
            if len(self.outcome.redirects) < 16:
                self.outcome.redirects.append(record)
        if self._flavor not in _PER_HOST_AUTHORIZER:
            record["runtime_sends"] = (
                f"only the Authorization header of {self._host}, which Go keeps for the same host name or a subdomain"
                if sent_auth else f"nothing: the runtime only authorizes the hosts it pinged, not {host}")
            record["detail"] = f"{host} answers {response.status_code} Unauthorized"
            record["runtime_error"] = "unauthorized: authentication required"
            raise RegistryError(Failure(
                "auth", "redirect-challenge",
                f"the redirect target {host} asks for credentials; the runtime sends "
                + ("it no credentials of its own" if sent_auth else "none there"),
                "unauthorized: authentication required", url=display_url(url), status=response.status_code,
                error_code="UNAUTHORIZED", transport_ok=True, details={"endpoint_host": self._host, "redirect_host": host}))
        credential = self._credentials[host] if host in self._credentials else (
            self._lookup(host) if self._lookup is not None else None)
        record["credentials"] = credential.source if credential else None
        record["runtime_sends"] = (f"the credentials configured for {host} ({credential.source})" if credential
                                   else f"nothing: the runtime has no credentials for {host}")
        # The other host's outcome is its own: the endpoint's (status, method, realm) stays as it was.
        # A context variable, not an attribute: concurrent blob tasks share this authorizer.
        other = AuthOutcome(credentials=record["credentials"])
        token = _OTHER_HOST_OUTCOME.set((self, other))
        try:
            await self._handle(host, credential, response, scope, sent_auth)
        except RegistryError as err:
            record["status"], record["detail"] = "failed", f"{host}: {err.failure.message}"
            record["runtime_error"] = err.failure.go_error
            raise
        else:
            record["status"], record["detail"] = "ok", other.label
        finally:
            _OTHER_HOST_OUTCOME.reset(token)

    def _out(self) -> AuthOutcome:
        """The outcome being written: the endpoint's, or that of the other host being answered in this task."""
        current = _OTHER_HOST_OUTCOME.get()
        return current[1] if current is not None and current[0] is self else self.outcome

    def _basic_challenge(self, host: str, credential: Credential | None, challenge: Challenge, url: str) -> None:
        self._out().scheme = "basic"
        if credential is None or credential.kind != "basic":
            self._fail("missing", "no-credentials", url,
                       "the endpoint asks for Basic credentials and none apply to it", "no basic auth credentials", 401)
        self._handlers[host] = challenge
        self._credentials[host] = credential
        self._out().method = "basic"

    async def _bearer(self, host: str, credential: Credential | None, challenge: Challenge, scope: str) -> None:
        out = self._out()
        out.scheme, out.realm, out.service = "bearer", display_url(challenge.params["realm"]), challenge.params.get("service")
        self._handlers[host] = challenge
        self._credentials[host] = credential
        if credential is not None and credential.kind == "registrytoken":
            token = _Token(credential.secret, float("inf"), "registry-token")
        else:
            token = await self._fetch_token(credential, challenge, scope)
        self._tokens[self._token_key(host, challenge, scope)] = token
        self._out().method = token.method

    def _refused(self, url: str, response: httpx.Response) -> None:
        """A 401 although credentials/token were sent: refused, or needs credentials we do not have."""
        anonymous = self._out().method in ("token-anonymous", "none")
        if anonymous:
            self._fail("missing", "unauthorized", url, "the endpoint requires credentials and none apply to it",
                       "unauthorized: authentication required", response.status_code)
        if self._flavor == "containerd" and self._out().method == "basic":
            # containerd retries with the same Basic credentials, then gives up on the last answer itself.
            path = [p for p in httpx.URL(url).path.split("/") if p]
            self._fail("rejected", "unauthorized", url, "the endpoint refused the credentials that apply to it",
                       f"pulling from host {httpx.URL(url).netloc.decode()} failed with status code "
                       f"[{' '.join(path[-2:])}]: {response.status_code} {response.reason_phrase}",
                       response.status_code, details={"status_only": True})
        self._fail("rejected", "unauthorized", url, "the endpoint refused the credentials that apply to it",
                   "unauthorized: authentication required", response.status_code)

    def _fail(self, status: str, kind: str, url: str, message: str, go_error: str, http_status: int | None,
              details: dict[str, Any] | None = None) -> None:
        failure = Failure("auth", kind, message, go_error, url=display_url(url), status=http_status,
                          error_code="UNAUTHORIZED" if http_status == 401 else None,
                          # "no basic auth credentials" is raised by the client: Docker then still
                          # tries plain http on the host (allowV1Fallback: transportOK false).
                          transport_ok=http_status is not None and kind != "no-credentials", details=details or {})
        out = self._out()
        out.status, out.detail, out.failure = status, message, failure
        raise RegistryError(failure)

    def note_denied(self, url: str, status: int) -> None:
        """A 403 on a resource after authenticating: access denied (refused, or missing when anonymous)."""
        anonymous = self.outcome.method in ("token-anonymous", "none")
        self.outcome.status = "missing" if anonymous else "rejected"
        self.outcome.detail = "the registry denied access to the repository" + (" to anonymous users" if anonymous else "")

    # -- tokens ----------------------------------------------------------------------------
    @staticmethod
    def _scopes(challenge: Challenge, scope: str) -> list[str]:
        """The challenge's scopes plus the request's (runtimes add the repository pull scope)."""
        scopes = [s for s in challenge.params.get("scope", "").split(" ") if s]
        if scope and scope not in scopes:
            scopes.append(scope)
        return scopes

    def _form(self, challenge: Challenge, scope: str) -> dict[str, str]:
        form = {"client_id": "containerd-client" if self._flavor == "containerd" else "regtui"}
        if challenge.params.get("service"):
            form["service"] = challenge.params["service"]
        scopes = self._scopes(challenge, scope)
        if scopes:
            form["scope"] = " ".join(scopes)
        return form

    async def _fetch_token(self, cred: Credential | None, challenge: Challenge, scope: str) -> _Token:
        realm = challenge.params["realm"]
        try:
            scheme = urlsplit(realm).scheme
        except ValueError:  # e.g. an unclosed IPv6 bracket
            scheme = "(unparseable)"
        if scheme not in ("http", "https"):
            self._fail("failed", "bad-realm", realm, f"the token realm {display_url(realm)!r} is not an http(s) URL",
                       f"unsupported protocol scheme {scheme!r}", None)
        self.realm_urls.append(realm)
        form = self._form(challenge, scope)
        if cred is not None and cred.kind == "identitytoken":
            post_form = {**form, "grant_type": "refresh_token", "refresh_token": cred.secret}
            return await self._post_then_get(realm, challenge, scope, post_form, "token-identity",
                                             _basic(cred.username, cred.secret), fallback_statuses=self._post_fallback())
        if cred is not None and cred.kind == "basic" and self._flavor == "containerd":
            post_form = {**form, "grant_type": "password", "username": cred.username, "password": cred.secret}
            return await self._post_then_get(realm, challenge, scope, post_form, "token-credentials",
                                             _basic(cred.username, cred.secret), fallback_statuses=(400, 401, 404, 405))
        headers = {"Authorization": _basic(cred.username, cred.secret)} if cred is not None and cred.kind == "basic" else {}
        method = "token-credentials" if headers else "token-anonymous"
        self._out().token_request = "GET"
        return await self._get(realm, challenge, scope, headers, method)

    def _post_fallback(self) -> tuple[int, ...]:
        return (400, 401, 404, 405) if self._flavor == "containerd" else (404,)

    async def _post_then_get(self, realm: str, challenge: Challenge, scope: str, form: dict[str, str], method: str,
                             basic: str, fallback_statuses: tuple[int, ...]) -> _Token:
        response = await self._request("POST", realm, {}, form)
        if response.status_code in fallback_statuses:
            self._out().token_request = f"POST {response.status_code} -> GET"
            return await self._get(realm, challenge, scope, {"Authorization": basic}, method)
        self._out().token_request = "POST"
        return self._token_from(response, realm, method)

    async def _get(self, realm: str, challenge: Challenge, scope: str, headers: dict[str, str], method: str) -> _Token:
        query: list[tuple[str, str]] = []
        if challenge.params.get("service"):
            query.append(("service", challenge.params["service"]))
        query += [("scope", s) for s in self._scopes(challenge, scope)]
        sep = "&" if urlsplit(realm).query else "?"
        url = realm + (sep + urlencode(query) if query else "")
        response = await self._request("GET", url, headers, None)
        return self._token_from(response, realm, method)

    async def _request(self, method: str, url: str, headers: dict[str, str], form: dict[str, str] | None) -> httpx.Response:
        try:
            return await self._send(method, url, headers, form)
        except RegistryError as exc:
            f = exc.failure
            failure = Failure("auth", f.kind, f"token server {display_url(url)} failed: {f.message}", f.go_error,
                              url=display_url(url), status=f.status, timed_out=f.timed_out,
                              details={**f.details, "token_server_phase": f.phase})
            out = self._out()
            out.status, out.detail, out.failure = "failed", failure.message, failure
            raise RegistryError(failure) from None

    def _token_from(self, response: httpx.Response, realm: str, method: str) -> _Token:
        if response.status_code in (401, 403):
            if method == "token-anonymous":
                self._fail("missing", "token-denied", realm, "the token server refuses anonymous access",
                           "unauthorized: authentication required", response.status_code)
            self._fail("rejected", "token-denied", realm, "the token server refused the credentials",
                       "unauthorized: incorrect username or password", response.status_code)
        if response.status_code != 200:
            self._fail("failed", "token-status", realm, f"the token server answered HTTP {response.status_code}",
                       f"unexpected status code {response.status_code}", response.status_code)
        try:
            data = json.loads(response.content[:MAX_TOKEN_RESPONSE].decode("utf-8", "replace"))
            token = data.get("token") or data.get("access_token")
            if not isinstance(token, str) or not token or len(token) > 65536:
                raise ValueError("no token")
            expires_in = data.get("expires_in")
            expires_in = expires_in if isinstance(expires_in, int) and 0 < expires_in < 10**7 else DEFAULT_EXPIRES_IN
        except (ValueError, AttributeError, RecursionError):
            self._fail("failed", "bad-token-response", realm, "the token server's answer has no usable token",
                       "failed to decode token response", response.status_code)
        return _Token(token, self._clock() + max(expires_in - 5, 1), method)
