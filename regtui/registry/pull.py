"""The instrumented test pull: one image, pulled the way one runtime would pull it, timed.

:func:`test_pull` walks the route's endpoints in the runtime's order with the runtime's fallback
rules (:mod:`regtui.registry.flavors`), resolves the reference (index -> this host's platform,
:mod:`regtui.registry.resolution`), downloads the config and layers in parallel with the
runtime's concurrency, verifies every digest and size, and returns the JSON contract's ``pull``
object plus findings.

An endpoint that failed at the transport level is not tried again for later blobs of the same
pull: a black-holed mirror costs one timeout, not one per layer (containerd itself would retry it
per blob; the evidence says so).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from regtui import redact
from regtui.findings import dedupe, finding, fix
from regtui.model import Endpoint, Finding, Route, TLSInputs
from regtui.net.proxy import ProxyEnv
from regtui.refs import DOCKER_HUB, HUB_API_HOST, Reference
from regtui.registry.blobs import BlobResult, FileSink, NullSink, Progress, download_blob
from regtui.registry.client import Session
from regtui.registry.diagnose import (
    auth_findings,
    endpoint_findings,
    is_transport,
    rate_limit_findings,
    restart_for,
    source_file,
)
from regtui.registry.errors import Failure, RegistryError, display_url, planned_failure, runtime_error
from regtui.registry.flavors import Flavor, flavor_for
from regtui.registry.manifest import Descriptor, host_platform
from regtui.registry.resolution import Resolved, resolve, wanted_platform
from regtui.runtimes.endpoints import endpoint as make_endpoint

__all__ = ["test_pull", "concurrency_for", "DEFAULT_CONCURRENCY", "CONCURRENCY_KEYS", "open_session", "candidate_reference"]

#: Docker's and containerd's default ``max-concurrent-downloads``.
DEFAULT_CONCURRENCY = 3
#: ``RuntimeView.summary`` keys that hold the runtime's download concurrency, first match wins.
CONCURRENCY_KEYS = ("max_concurrent_downloads", "max-concurrent-downloads", "concurrency")
#: ``RuntimeView.summary`` keys for Docker's per-layer attempts (graphdriver store).
ATTEMPT_KEYS = ("max_download_attempts", "max-download-attempts")
_REGISTRY_DATES_KEPT = 200


def _summary_int(summary: dict[str, Any], keys: tuple[str, ...]) -> tuple[int, str] | None:
    for key in keys:
        value = summary.get(key)
        src = summary.get(f"{key}_source")
        if isinstance(value, dict):  # {"value": 3, "source": "path:line"}
            src = value.get("source")
            value = value.get("value")
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value, str(src) if src else f"{key} (runtime configuration)"
    return None


def concurrency_for(view: Any, explicit: int | None, option: int | None) -> tuple[int, str]:
    """The download concurrency and where it came from: argument, ``--concurrency``, the runtime's config, default 3."""
    if explicit:
        return max(1, explicit), "--concurrency" if explicit == option else "argument"
    if option:
        return max(1, option), "--concurrency"
    found = _summary_int(view.summary, CONCURRENCY_KEYS) if view is not None else None
    if found:
        return found
    return DEFAULT_CONCURRENCY, "default (3)"


@dataclass
class _Attempt:
    """One endpoint's part in the pull."""

    endpoint: Endpoint
    status: str = "untested"
    failure: Failure | None = None
    elapsed_ms: float | None = None
    reason: str = ""
    session: Session | None = None
    served: str = ""
    """What it served: ``manifest``, ``blobs``."""

    def to_dict(self, flavor: Flavor, reference: str) -> dict[str, Any]:
        """The pull report's endpoint row (redacted)."""
        f = self.failure
        auth = self.session.authorizer.outcome.to_dict() if self.session else None
        return redact.value({
            "url": self.endpoint.url, "key": self.endpoint.key, "host": self.endpoint.host, "role": self.endpoint.role,
            "source": self.endpoint.source, "status": self.status, "reason": self.reason,
            "phase": f.phase if f else None, "kind": f.kind if f else None, "http_status": f.status if f else None,
            "error": f.message if f else None, "go_error": f.go_error if f else None,
            "runtime_error": runtime_error(flavor.name, f, reference, query=self.endpoint.query) if f else None,
            "elapsed_ms": None if self.elapsed_ms is None else round(self.elapsed_ms, 1),
            "authentication": auth, "served": self.served,
            "base_url": self.session.base_url if self.session else None,
        })


def open_session(ctx: Any, ep: Endpoint, view: Any, flavor: Flavor, max_connections: int) -> Session:
    """A session for ``ep`` with the runtime's credentials and proxy environment; Date headers go to ``ctx``.

    The session gets the credentials for ``ep.host`` and, for hosts the endpoint redirects to, the
    runtime's lookup for each of them: dockerd holds one auth config (the image registry's, from
    ``X-Registry-Auth``), so it has nothing for another host.
    """
    credential = None
    lookup = None
    if view is not None and view.credentials is not None:
        credential = view.credentials(ep.host)
        if view.name != "docker":
            lookup = view.credentials
    dates = ctx.observations.setdefault("registry_dates", [])

    def on_date(record: dict[str, Any]) -> None:
        if len(dates) < _REGISTRY_DATES_KEPT:
            dates.append(record)

    return Session(ctx.host, ep, resolver=ctx.resolver, timeouts=ctx.timeouts,
                   proxy_env=view.proxy_env if view is not None else ProxyEnv(), credential=credential,
                   flavor=flavor.name, max_connections=max_connections, on_date=on_date, credentials=lookup)


def _default_route(ref: Reference, runtime: str) -> Route:
    """The runtime's built-in route when no planner is available: the registry itself."""
    host = HUB_API_HOST if ref.is_docker_hub else ref.domain
    name = host.rsplit(":", 1)[0].strip("[]")
    loopback = name == "localhost" or name.startswith("127.") or name == "::1"
    tls = TLSInputs(verify=not loopback, verify_reason="loopback registry: verification skipped" if loopback else "")
    ep = make_endpoint(f"https://{host}/v2", host, "upstream", f"default ({runtime} built-in)", ref.path, ProxyEnv(),
                       tls=tls, http_fallback=loopback)
    return Route(runtime, str(ref), (ep,), notes=("no planner for this runtime: its built-in default route",))


def _find_route(ctx: Any, ref: Reference, runtime: str, view: Any) -> tuple[Route, list[Finding]]:
    for route in ctx.routes:
        if route.runtime == runtime and route.image == str(ref):
            return route, []
    if view is not None and view.planner is not None:
        return view.plan(ref)
    return _default_route(ref, runtime), []


class _Pull:
    """State of one test pull (kept out of the public API: :func:`test_pull` is the entry point)."""

    def __init__(self, ctx: Any, ref: Reference, runtime: str, route: Route, view: Any, concurrency: int,
                 concurrency_source: str, progress: Progress | None, output_dir: str | None) -> None:
        self.ctx, self.ref, self.runtime, self.route, self.view = ctx, ref, runtime, route, view
        self.flavor = flavor_for(route)
        self.concurrency, self.concurrency_source = concurrency, concurrency_source
        self.progress = progress
        self.output = Path(output_dir) if output_dir else None
        self.setup_failure: Failure | None = None
        """A problem found before any request (an invalid ``--platform``): nothing is pulled."""
        try:
            self.wanted = wanted_platform(ctx.options.platform)
        except ValueError as exc:
            self.wanted = host_platform()
            self.setup_failure = Failure("options", "invalid-platform", str(exc), str(exc))
        self.attempts = [_Attempt(ep) for ep in route.endpoints]
        self.started = time.monotonic()
        self.resolved: Resolved | None = None
        self.manifest_attempt: _Attempt | None = None
        self.blobs: list[BlobResult] = []
        self.dead: set[int] = set()
        self.abandoned: tuple[Resolved, _Attempt, list[BlobResult]] | None = None
        """The last endpoint Docker left after a blob failure: reported when no later one served."""
        found = _summary_int(view.summary, ATTEMPT_KEYS) if view is not None else None
        self.max_attempts = min(found[0], 10) if found and self.flavor.name == "docker" else 3

    # -- endpoints -------------------------------------------------------------------------
    def _session(self, attempt: _Attempt) -> Session:
        if attempt.session is None:
            attempt.session = open_session(self.ctx, attempt.endpoint, self.view, self.flavor, self.concurrency + 1)
        return attempt.session

    def _usable(self, attempt: _Attempt, confirmed_tls: set[str], for_blobs: bool) -> str:
        """Why ``attempt`` is not tried (empty when it is)."""
        ep = attempt.endpoint
        if ep.status == "skipped":
            return ep.reason or "skipped by the route planner"
        if self.flavor.name == "docker" and ep.url.startswith("http://") and ep.host in confirmed_tls:
            return "skipped: the https endpoint for this host already answered over HTTP (confirmedTLSRegistries)"
        if self.flavor.name == "containerd":
            need = "pull" if (for_blobs or self.ref.by_digest) else "resolve"
            caps = ep.capabilities or ("pull", "resolve")
            if need not in caps or "pull" not in caps:
                return f"skipped: capabilities {list(caps)} lack {need!r}"
        return ""

    def _falls_back_in_place(self, attempt: _Attempt) -> bool:
        """The runtime retries this host in plain HTTP itself (no separate ``http://`` endpoint in the route)."""
        ep = attempt.endpoint
        return ep.http_fallback and not any(a.endpoint.url.startswith("http://") and a.endpoint.host == ep.host
                                            for a in self.attempts)

    async def _resolve_at(self, attempt: _Attempt) -> Resolved:
        session = self._session(attempt)
        began = time.monotonic()
        try:
            try:
                return await resolve(session, self.ref, self.flavor, self.wanted)
            except RegistryError as err:
                if self._falls_back_in_place(attempt) and err.failure.phase == "tls" and \
                        err.failure.kind in ("http-to-https", "timeout") and session.base_url.startswith("https://"):
                    session.use_plain_http()
                    attempt.reason = f"tried over plain http: https got {err.failure.kind} and the runtime falls back to http"
                    return await resolve(session, self.ref, self.flavor, self.wanted)
                raise
        finally:
            attempt.elapsed_ms = (time.monotonic() - began) * 1000

    async def run(self) -> None:
        """Walk the endpoints with the flavor's rules until one serves the image or the rules stop."""
        if self.setup_failure is None:
            await self._walk()
        if self.resolved is None and self.abandoned is not None:
            # Docker moved on after a blob failure and nothing later served: report that attempt.
            self.resolved, self.manifest_attempt, self.blobs = self.abandoned

    def _candidates(self) -> list[list[int]]:
        """containers-image: the endpoints of each short-name candidate (its mirrors, then its primary)."""
        groups: list[list[int]] = [[]]
        for i, a in enumerate(self.attempts):
            groups[-1].append(i)
            if a.endpoint.role == "upstream" and i + 1 < len(self.attempts):
                groups.append([])
        return groups if self.flavor.name == "containers-image" else [list(range(len(self.attempts)))]

    def reference_of(self, attempt: _Attempt) -> str:
        """The reference the runtime names in ``attempt``'s error: a short-name candidate's own name, else the image's."""
        groups = self._candidates()
        if len(groups) > 1:
            for g in groups:
                if any(self.attempts[i] is attempt for i in g):
                    return _candidate_name(self.attempts[g[-1]].endpoint, self.ref)
        return str(self.ref)

    def _next_candidate(self, index: int) -> int | None:
        """The first endpoint of the candidate after the one holding ``index`` (podman and CRI-O move on after any error)."""
        return next((g[0] for g in self._candidates() if g and g[0] > index), None)

    async def _walk(self) -> None:
        confirmed_tls: set[str] = set()
        index = 0
        while index < len(self.attempts):
            attempt = self.attempts[index]
            if attempt.endpoint.status == "failed":  # the runtime stops before any request here
                planned = planned_failure(attempt.endpoint)
                self._failed(index, attempt, planned, confirmed_tls)
                following = index + 1 if self.flavor.moves_on(planned, attempt.endpoint) else self._next_candidate(index)
                if following is None:
                    return
                index = following
                continue
            why = self._usable(attempt, confirmed_tls, for_blobs=False)
            if why:
                attempt.status, attempt.reason = "skipped", why
                index += 1
                continue
            try:
                self.resolved = await self._resolve_at(attempt)
            except RegistryError as err:
                self._failed(index, attempt, err.failure, confirmed_tls)
                following = index + 1 if self.flavor.moves_on(err.failure, attempt.endpoint) else self._next_candidate(index)
                if following is None:
                    return
                index = following
                continue
            attempt.status, attempt.served = "ok", "manifest"
            self.manifest_attempt = attempt
            self._write_manifests()
            await self._download(index)
            failed = next((b.failure for b in self.blobs if not b.ok and b.failure), None)
            if failed is None:
                return
            if self.flavor.blob_failure_moves_on and self.flavor.moves_on(failed, attempt.endpoint):
                # dockerd retries the whole pull on the next endpoint (the layer error is a fallbackError
                # with transportOK, so this host's plain-http endpoint is skipped).
                following: int | None = index + 1
                attempt.reason = "a blob failed; dockerd retries the whole pull on the next endpoint"
            else:
                following = self._next_candidate(index)
                if following is None:
                    return
                attempt.reason = "a blob failed; podman and CRI-O go on to the next short-name candidate"
            self._failed(index, attempt, failed, confirmed_tls)
            if attempt.endpoint.url.startswith("https://"):
                confirmed_tls.add(attempt.endpoint.host)
            self.abandoned = (self.resolved, attempt, self.blobs)
            self.resolved, self.manifest_attempt, self.blobs = None, None, []
            index = following  # type: ignore[assignment]

    def _failed(self, index: int, attempt: _Attempt, failure: Failure, confirmed_tls: set[str]) -> None:
        attempt.status, attempt.failure = "failed", failure
        if failure.transport_ok and attempt.endpoint.url.startswith("https://"):
            confirmed_tls.add(attempt.endpoint.host)
        if is_transport(failure):
            self.dead.add(index)

    # -- blobs -----------------------------------------------------------------------------
    def _blob_hosts(self, first: int) -> list[int]:
        """Endpoints to fetch blobs from, in order (containerd: every pull-capable host; else the resolving one)."""
        if not self.flavor.per_blob_hosts:
            return [first]
        return [i for i, a in enumerate(self.attempts)
                if i not in self.dead and not self._usable(a, set(), for_blobs=True)]

    async def _download(self, first: int) -> None:
        assert self.resolved is not None
        descriptors = list(self.resolved.image.blobs)
        limiter = asyncio.Semaphore(self.concurrency)
        hosts = self._blob_hosts(first)

        async def one(desc: Descriptor) -> BlobResult:
            async with limiter:
                return await self._fetch(desc, hosts)

        self.blobs = list(await asyncio.gather(*(one(d) for d in descriptors)))
        served = {b.endpoint for b in self.blobs if b.ok}
        for i in hosts:
            session = self.attempts[i].session
            if i != first and session is not None and session.base_url in served:
                self.attempts[i].served = "blobs"

    async def _fetch(self, desc: Descriptor, hosts: list[int]) -> BlobResult:
        tried: list[dict[str, Any]] = []
        result: BlobResult | None = None
        for i in hosts:
            if i in self.dead:
                continue
            if result is not None:  # the previous host failed for this blob: keep it as evidence
                tried.append({"endpoint": result.endpoint,
                              "failure": result.failure.to_dict() if result.failure else None})
            attempt = self.attempts[i]
            session = self._session(attempt)
            sink = FileSink(self.output, desc.digest) if self.output else NullSink()
            try:
                result = await download_blob(session, desc, max_attempts=self.max_attempts, sink=sink,
                                             progress=self.progress)
            except BaseException:  # cancelled (ctrl+c, SIGTERM) or failed: no partial file stays
                sink.abort()
                raise
            if result.ok or not self.flavor.per_blob_hosts:
                break
            failure = result.failure
            if failure is not None and failure.kind in ("digest-mismatch", "size-mismatch"):
                break  # containerd fails the commit: no other host is asked
            if failure is not None and is_transport(failure):
                self.dead.add(i)
        assert result is not None or not hosts
        if result is None:
            result = BlobResult(desc, "", failure=Failure("blob", "no-endpoint", "no endpoint left to fetch from", ""))
            result.started = result.ended = time.monotonic()
        result.tried = tried
        return result

    # -- output ----------------------------------------------------------------------------
    def _write_manifests(self) -> None:
        if self.output is None or self.resolved is None:
            return
        for manifest in {self.resolved.top.digest: self.resolved.top, self.resolved.image.digest: self.resolved.image}.values():
            algorithm, hexdigest = manifest.digest.split(":", 1)
            path = self.output / "blobs" / algorithm / hexdigest
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(manifest.body)

    def _write_index(self) -> None:
        if self.output is None or self.resolved is None:
            return
        top = self.resolved.top
        index = {"schemaVersion": 2, "manifests": [{
            "mediaType": top.media_type, "digest": top.digest, "size": top.size,
            "annotations": {"org.opencontainers.image.ref.name": self.ref.tag or self.ref.digest or "latest",
                            "io.containerd.image.name": str(self.ref)}}]}
        (self.output / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
        tmp = self.output / f"index.json.tmp-{os.getpid()}"
        try:
            tmp.write_text(json.dumps(index, indent=2))
            os.replace(tmp, self.output / "index.json")
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def _blob_dict(result: BlobResult, origin: float) -> dict[str, Any]:
    timings = result.timings.to_dict()
    seconds = result.timings.total / 1000.0
    return {
        "digest": result.descriptor.digest, "size": result.descriptor.size, "media_type": result.descriptor.media_type,
        "endpoint": result.endpoint, "attempts": result.attempts, "ok": result.ok, "resumed": result.resumed,
        "timings_ms": timings, "started_ms": round(max(0.0, (result.started - origin) * 1000), 3),
        "bytes_per_second": round(result.descriptor.size / seconds) if result.ok and seconds > 0 else None,
        "received": result.received, "waited_ms": round(result.waited_ms, 3), "requests": result.hops,
        "error": result.failure.to_dict() if result.failure else None, "retries": result.retries,
        "tried": result.tried, "body_reader": result.body_reader,
    }


def _error_dict(pull: _Pull, failure: Failure) -> dict[str, Any]:
    """The reported failure, with the identity key of the endpoint it happened on (one URL can be two endpoints)."""
    at = next((a for a in pull.attempts if a.failure is failure), None)
    return {**failure.to_dict(), "key": at.endpoint.key if at is not None else None}


def _user_error(pull: _Pull) -> tuple[Failure | None, str | None]:
    """The failure the runtime reports to the user and its wording."""
    if pull.setup_failure is not None:
        return pull.setup_failure, pull.setup_failure.message
    failed = [a for a in pull.attempts if a.failure is not None and a.status == "failed"]
    blob_failure = next((b.failure for b in pull.blobs if not b.ok and b.failure), None)
    flavor, reference = pull.flavor, pull.ref.familiar() if pull.flavor.name == "docker" else str(pull.ref)
    if blob_failure is not None and pull.resolved is not None:
        return blob_failure, runtime_error(flavor.name, blob_failure, reference)
    if not failed:
        return None, None
    if flavor.name == "docker":
        last = failed[-1].failure
        assert last is not None
        return last, runtime_error("docker", last, reference)
    if flavor.name == "containerd":
        def rank(a: _Attempt) -> int:
            f = a.failure
            assert f is not None
            return 3 if f.kind == "too-large" else 2 if f.status and f.status != 404 else 1 if f.status == 404 else 0
        chosen = max(failed, key=rank)
        best = chosen.failure
        assert best is not None
        return best, runtime_error("containerd", best, reference, query=chosen.endpoint.query)
    groups = [[pull.attempts[i] for i in g] for g in pull._candidates()]
    if len(groups) == 1:
        return _candidate_error(failed, reference)
    # A short name: podman lists one error per candidate (shortnames Resolved.FormatPullErrors).
    failed_ids = {id(a) for a in failed}
    errors = [_candidate_error([a for a in g if id(a) in failed_ids], _candidate_name(g[-1].endpoint, pull.ref))
              for g in groups]
    shown = [(f, f"initializing source docker://{_candidate_name(g[-1].endpoint, pull.ref)}: {t}")
             for g, (f, t) in zip(groups, errors) if t]
    if not shown:
        return None, None
    if len(shown) == 1:
        return shown[0]
    return shown[-1][0], f"{len(shown)} errors occurred while pulling:" + "".join(f"\n * {t}" for _, t in shown)


def candidate_reference(route: Route, ep: Endpoint, ref: Reference, flavor: Flavor) -> str:
    """The reference containers/image names in ``ep``'s error: with several short-name candidates, the name of the
    candidate ``ep`` belongs to (its primary is the next upstream on the route); otherwise the image's."""
    if flavor.name != "containers-image" or sum(1 for e in route.endpoints if e.role == "upstream") < 2:
        return str(ref)
    at = next((i for i, e in enumerate(route.endpoints) if e is ep), None)
    if at is None:
        return str(ref)
    primary = next((e for e in route.endpoints[at:] if e.role == "upstream"), ep)
    return _candidate_name(primary, ref)


def _candidate_name(ep: Endpoint, ref: Reference) -> str:
    """The reference a short-name candidate is pulled as, from its primary endpoint."""
    domain = DOCKER_HUB if ep.host == HUB_API_HOST else ep.host
    return f"{domain}/{ep.repository}" + (f"@{ref.digest}" if ref.digest else f":{ref.tag or 'latest'}")


def _candidate_error(failed: list[_Attempt], reference: str) -> tuple[Failure | None, str | None]:
    """containers/image's error for one reference: the primary's, after the mirrors that also failed."""
    if not failed:
        return None, None
    primary = failed[-1].failure
    assert primary is not None
    mirrors = [a for a in failed[:-1] if a.failure]
    text = runtime_error("containers-image", primary, reference)
    if mirrors:
        listed = "\n".join(f"{a.endpoint.host}/{a.endpoint.repository}: {a.failure.go_error}" for a in mirrors
                           if a.failure)
        text = f"(Mirrors also failed: [{listed}]): {text}"
    return primary, text


def _report(pull: _Pull, ended: float) -> dict[str, Any]:
    origin = pull.started
    resolved = pull.resolved
    config = next((b for b in pull.blobs if resolved and resolved.image.config and
                   b.descriptor.digest == resolved.image.config.digest), None)
    layers = [b for b in pull.blobs if b is not config]
    ok = resolved is not None and all(b.ok for b in pull.blobs)
    failure, user_error = _user_error(pull)
    extra: list[dict[str, Any]] = []
    for attempt in pull.attempts:
        if attempt.session is not None:
            for entry in attempt.session.extra.values():
                extra.append({**entry, "runtime": pull.runtime})
    return {
        "image": str(pull.ref), "runtime": pull.runtime, "flavor": pull.flavor.name,
        "endpoint": pull.manifest_attempt.session.base_url if pull.manifest_attempt and pull.manifest_attempt.session else None,
        "concurrency": pull.concurrency, "concurrency_source": pull.concurrency_source,
        "wall_ms": round((ended - origin) * 1000, 3),
        "bytes": sum(b.descriptor.size for b in pull.blobs if b.ok),
        "ok": ok,
        "platform": str(pull.wanted),
        "manifest": {
            "digest": resolved.top.digest if resolved else None,
            "media_type": resolved.top.media_type if resolved else None,
            "platform": str(resolved.entry.platform) if resolved and resolved.entry and resolved.entry.platform
            else (str(pull.wanted) if resolved else None),
            "platform_digest": resolved.image.digest if resolved else None,
            "size": resolved.top.size if resolved else None,
        },
        "config": _blob_dict(config, origin) if config else None,
        "layers": [_blob_dict(b, origin) for b in layers],
        "endpoints": [a.to_dict(pull.flavor, pull.reference_of(a)) for a in pull.attempts],
        "extra_endpoints": redact.value(extra),
        "error": _error_dict(pull, failure) if failure and not ok else None,
        "runtime_error": user_error if not ok else None,
        "output": str(pull.output) if pull.output and ok else None,
        "route_mode": pull.route.mode, "route_notes": list(pull.route.notes),
    }


# -- findings -------------------------------------------------------------------------------
def _pull_fix(code: str, subject: str, summary: str, rt: str, **params: Any) -> Any:
    return fix(code, subject, summary, detail=rt, params={"runtime": rt, **params})


def _endpoint_findings(pull: _Pull) -> list[Finding]:
    out: list[Finding] = []
    route, flavor = pull.route, pull.flavor
    hosts_with_http_later = {a.endpoint.host for a in pull.attempts if a.endpoint.url.startswith("http://")}
    hosts_with_https = {a.endpoint.host for a in pull.attempts if a.endpoint.url.startswith("https://")}
    for attempt in pull.attempts:
        session, f = attempt.session, attempt.failure
        if f is not None:
            handled = attempt.endpoint.http_fallback or (attempt.endpoint.url.startswith("https://")
                                                         and attempt.endpoint.host in hosts_with_http_later)
            # dockerd's plain-http try of a host it also tries over https is its fallback, not a setting.
            fallback = (flavor.name == "docker" and attempt.endpoint.url.startswith("http://")
                        and attempt.endpoint.host in hosts_with_https and f.kind == "https-to-http")
            out += endpoint_findings(route, attempt.endpoint, f, runtime_error=runtime_error(
                                         flavor.name, f, pull.reference_of(attempt), query=attempt.endpoint.query),
                                     elapsed_ms=attempt.elapsed_ms, timeout_s=pull.ctx.timeouts.connect,
                                     handled_by_fallback=(handled and f.kind == "http-to-https") or fallback)
        if session is not None:
            out += auth_findings(route, attempt.endpoint, session.authorizer.outcome,
                                 runtime_error=runtime_error(flavor.name, f, pull.reference_of(attempt),
                                                             query=attempt.endpoint.query) if f else "")
            out += rate_limit_findings(route, attempt.endpoint, status=f.status if f else None,
                                       ratelimit=session.ratelimit,
                                       retry_after=f.details.get("retry_after") if f else None)
    return out


def _findings(pull: _Pull, report: dict[str, Any]) -> list[Finding]:
    rt, image = pull.runtime, str(pull.ref)
    out = _endpoint_findings(pull)
    failure, user_error = _user_error(pull)
    evidence_base = {"runtime": rt, "image": image, "endpoints": report["endpoints"], "runtime_will_report": user_error}
    mismatched = [b for b in pull.blobs if not b.ok and b.failure and b.failure.kind in ("digest-mismatch", "size-mismatch")]
    manifest_mismatch = [a for a in pull.attempts
                         if a.failure and a.failure.kind == "digest-mismatch" and a.failure.phase == "manifest"]
    specific = False
    for b in mismatched:
        specific = True
        out.append(finding(
            "pull.digest-mismatch", b.descriptor.digest,
            f"{rt}: layer {b.descriptor.digest[:19]} from {display_url(b.endpoint)} does not match its digest",
            f"The bytes {display_url(b.endpoint)} serves for {b.descriptor.digest} ({b.failure.message if b.failure else ''}). "
            f"{pull.flavor.label} refuses the layer, so the pull fails: the stored blob is corrupt, or something on "
            "the path rewrites it.",
            evidence=redact.value({**evidence_base, "layer": b.descriptor.digest, "endpoint": b.endpoint,
                                   "size": b.descriptor.size, "received": b.received,
                                   "failure": b.failure.to_dict() if b.failure else None}),
            runtime=rt, fix=_pull_fix("pull.digest-mismatch", b.descriptor.digest,
                                      f"re-push {image} or repair the registry storage behind {display_url(b.endpoint)}", rt),
        ))
    for a in manifest_mismatch:
        if a.failure is None:
            continue
        specific = specific or not report["ok"]
        out.append(finding(
            "pull.digest-mismatch", a.endpoint.host,
            f"{rt}: the manifest from {a.endpoint.host} does not match its digest",
            f"{a.endpoint.url} serves a manifest whose bytes hash to something else than it claims "
            f"({a.failure.message}).",
            evidence=redact.value({**evidence_base, "endpoint": a.endpoint.url, "failure": a.failure.to_dict()}),
            runtime=rt, fix=_pull_fix("pull.digest-mismatch", a.endpoint.host, "repair or re-push the manifest", rt),
        ))
    if not report["ok"] and failure is not None and not specific:
        if failure.kind == "platform-missing":
            specific = True
            out.append(finding(
                "pull.platform-missing", image, f"{rt}: {image} has no image for {pull.wanted}",
                f"The reference resolves to an index without an entry for {pull.wanted}; {pull.flavor.label} stops "
                "with 'no matching manifest'.",
                evidence=redact.value({**evidence_base, **failure.details}), runtime=rt,
                fix=_pull_fix("pull.platform-missing", image, f"publish a {pull.wanted} image or pull another tag", rt),
            ))
        elif failure.status == 404 and pull.resolved is None:
            specific = True
            out.append(finding(
                "pull.manifest-unknown", image, f"{rt}: {image} does not exist on any endpoint tried",
                f"Every endpoint {pull.flavor.label} asks answers 404 (or fails) for {pull.ref.reference}.",
                evidence=redact.value(evidence_base), runtime=rt,
                fix=_pull_fix("pull.manifest-unknown", image, "check the tag/digest and repository name", rt),
            ))
    if not report["ok"] and not specific:
        phase = failure.phase if failure else "route"
        at = failure.url if failure else None
        out.append(finding(
            "pull.failed", image, f"{rt}: the test pull of {image} failed ({phase})",
            f"{pull.flavor.label} cannot pull {image}: " + (failure.message if failure else "no endpoint to try")
            + (f". It will report: {user_error}" if user_error else "."),
            evidence=redact.value({**evidence_base, "endpoint": at, "phase": phase,
                                   "failure": failure.to_dict() if failure else None}),
            runtime=rt, fix=_pull_fix("pull.failed", image, "fix the cause named in the evidence", rt, phase=phase),
        ))
    out += _performance_findings(pull, report)
    return out


def _performance_findings(pull: _Pull, report: dict[str, Any]) -> list[Finding]:
    out: list[Finding] = []
    rt, image = pull.runtime, str(pull.ref)
    blobs = [b for b in ([report["config"]] if report["config"] else []) + report["layers"]]
    retried = [b for b in blobs if b["attempts"] > 1 or b["resumed"]]
    for b in retried:
        out.append(finding(
            "pull.retried", b["digest"], f"{rt}: layer {b['digest'][:19]} needed {b['attempts']} attempts"
            + (" and a resume" if b["resumed"] else ""),
            "The download was interrupted (" + "; ".join(r["message"] for r in b["retries"][:3])
            + "); a flaky path or registry makes every pull slower and sometimes fail.",
            evidence={"runtime": rt, "image": image, "layer": b["digest"], "endpoint": b["endpoint"],
                      "attempts": b["attempts"], "resumed": b["resumed"], "retries": b["retries"],
                      "waited_ms": b["waited_ms"]},
            runtime=rt,
        ))
    if report["ok"]:
        speeds = [b["bytes_per_second"] for b in blobs if b["bytes_per_second"] and b["size"] >= 64 * 1024]
        if len(speeds) >= 3:
            import statistics  # only here: it loads fractions and decimal

            median = statistics.median(speeds)
            for b in blobs:
                bps = b["bytes_per_second"]
                if bps and b["size"] >= 64 * 1024 and bps < median / 4 and b["timings_ms"]["total"] >= 300:
                    out.append(finding(
                        "pull.slow-layer", b["digest"], f"{rt}: layer {b['digest'][:19]} downloads "
                        f"{median / bps:.0f}x slower than the others",
                        f"{b['size']} bytes at {bps / 1e6:.2f} MB/s while the median layer gets {median / 1e6:.2f} MB/s "
                        f"from {display_url(b['endpoint'])}.",
                        evidence={"runtime": rt, "layer": b["digest"], "endpoint": b["endpoint"],
                                  "bytes_per_second": bps, "median_bytes_per_second": median,
                                  "timings_ms": b["timings_ms"]},
                        runtime=rt,
                    ))
        out += _low_concurrency(pull, blobs, report)
    return out


def _low_concurrency(pull: _Pull, blobs: list[dict[str, Any]], report: dict[str, Any]) -> list[Finding]:
    if len(blobs) <= pull.concurrency or not blobs:
        return []
    first = min(b["started_ms"] for b in blobs)
    last_start = max(b["started_ms"] for b in blobs) - first
    end = max(b["started_ms"] + b["timings_ms"]["total"] for b in blobs) - first
    # More downloads at once only help when each one mostly waits (latency-bound): when the bytes
    # themselves take the time, the link is the limit, not the concurrency.
    waiting = sum((t["dns"] or 0) + (t["connect"] or 0) + (t["tls"] or 0) + t["ttfb"]
                  for t in (b["timings_ms"] for b in blobs))
    transfer = sum(b["timings_ms"]["transfer"] for b in blobs)
    if end < 500 or last_start < 0.25 * end or waiting <= transfer:
        return []
    rt = pull.runtime
    src = pull.concurrency_source
    path = source_file(src)
    if path is None and pull.view is not None and rt == "docker":
        path = pull.view.summary.get("daemon_json")  # max-concurrent-downloads lives there
    return [finding(
        "pull.low-concurrency", rt, f"{rt}: {pull.concurrency} parallel downloads limit this pull",
        f"{len(blobs)} blobs, {pull.concurrency} at a time: the last one started {last_start:.0f} ms into the "
        f"{end:.0f} ms download, and the downloads spent more time waiting ({waiting:.0f} ms) than receiving "
        f"({transfer:.0f} ms). More downloads at once would overlap the waiting.",
        evidence={"runtime": rt, "image": str(pull.ref), "concurrency": pull.concurrency, "concurrency_source": src,
                  "blobs": len(blobs), "last_start_ms": round(last_start, 1), "download_ms": round(end, 1),
                  "waiting_ms": round(waiting, 1), "transfer_ms": round(transfer, 1)},
        runtime=rt,
        fix=fix("pull.low-concurrency", rt, f"raise {rt}'s max concurrent downloads (e.g. to {max(6, pull.concurrency * 2)})",
                files=[path] if path else [], restart=restart_for(rt), detail=rt,
                params={"runtime": rt, "current": pull.concurrency, "source": src}),
    )]


def _observe(ctx: Any, report: dict[str, Any]) -> None:
    seen = ctx.observations.setdefault("extra_endpoints", [])
    keys = {(e.get("runtime"), e.get("host")) for e in seen}
    for entry in report["extra_endpoints"]:
        if (entry.get("runtime"), entry.get("host")) not in keys:
            seen.append(entry)


async def test_pull(ctx: Any, ref: Reference, runtime: str, *, concurrency: int | None = None,
                    progress: Callable[[str, int, int], None] | None = None,
                    output_dir: str | None = None) -> tuple[dict[str, Any], list[Finding]]:
    """Pull ``ref`` as ``runtime`` would (see the module docstring); returns the report's ``pull`` object and findings.

    ``ctx`` is a :class:`~regtui.probecontext.ProbeContext`; ``progress(digest, bytes_so_far, size)`` is
    called while blobs download; ``output_dir`` writes an OCI image layout (nothing is written otherwise).
    """
    view = ctx.view(runtime)
    route, route_findings = _find_route(ctx, ref, runtime, view)
    n, source = concurrency_for(view, concurrency, ctx.options.concurrency)
    if output_dir:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
    pull = _Pull(ctx, ref, runtime, route, view, n, source, progress, output_dir)
    try:
        await pull.run()
        if pull.resolved is not None and all(b.ok for b in pull.blobs):
            pull._write_index()
    finally:
        for attempt in pull.attempts:
            if attempt.session is not None:
                await attempt.session.aclose()
    report = _report(pull, time.monotonic())
    _observe(ctx, report)
    return report, dedupe(route_findings + _findings(pull, report))


test_pull.__test__ = False  # type: ignore[attr-defined]  # not a pytest test, despite its name


