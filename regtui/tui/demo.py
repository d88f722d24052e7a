"""A recorded report of a realistically broken node, for snapshot tests and demos.

Fixed clock, made-up names (``node-a``, ``*.corp.example``), no path or version of the machine
it runs on. It holds secrets on purpose (a proxy password, a registry token) so tests can prove
the workbench only ever shows the redacted form.
"""

from __future__ import annotations

from regtui.findings import assign_ids
from regtui.model import Cause, Endpoint, Finding, FixRef, Route, RuntimeInfo, SourceFile, TLSInputs, Verdict
from regtui.report import Report
from regtui.tui.source import PullLayer

__all__ = ["demo_report", "demo_pull_frames", "SECRETS", "IMAGE"]

IMAGE = "docker.io/library/alpine:3.20"
#: Strings that must never appear on screen.
SECRETS = ("hunter2", "s3cr3t-token")

_PROXY_WITH_PASSWORD = "http://svc:hunter2@proxy.corp.example:3128"
_LAYERS = (
    ("sha256:4abcf20661432fb2d719aaf90656f55c287f8ca915dc1c92ec14ff61e67fbaf8", 3_623_807),
    ("sha256:0a9a5dfd008f05ebc27e4790db0709a29e527690c21bcbcd01481eaeb6bb49dc", 1_048_576),
    ("sha256:9b3977197b4f2147bdd31e1271f811319dcd5c2fc595f14e81f5351ab6275b99", 262_144),
)


def _fix(fid: str, summary: str, kind: str = "edit", files: tuple[str, ...] = (), restart: str = "none") -> FixRef:
    return FixRef(id=fid, summary=summary, kind=kind, files=files, restart=restart)


def _findings() -> list[Finding]:
    return [
        Finding("config.ignored-key", "warning", "config", "/etc/docker/daemon.json",
                "/etc/docker/daemon.json:5: 'registry-mirror' is ignored (did you mean 'registry-mirrors'?)",
                "dockerd accepts the key and does nothing with it: no mirror is used for docker.io.",
                {"file": "/etc/docker/daemon.json", "line": 5, "key": "registry-mirror"},
                _fix("config.ignored-key@etc/docker/daemon.json#registry-mirror",
                     "rename registry-mirror to registry-mirrors", files=("/etc/docker/daemon.json",),
                     restart="reload docker"), "docker"),
        Finding("config.legacy-registry-config", "warning", "config", "/etc/containerd/config.toml",
                "containerd uses the legacy registry.mirrors table",
                "Deprecated since containerd 1.5; hosts.toml under config_path replaces it.",
                {"file": "/etc/containerd/config.toml", "line": 12},
                _fix("config.legacy-registry-config@etc/containerd/config.toml", "migrate mirrors to hosts.toml",
                     files=("/etc/containerd/config.toml",), restart="restart containerd"), "containerd"),
        Finding("tls.unknown-authority", "error", "certs", "mirror.corp.example",
                "mirror.corp.example presents a certificate signed by an unknown authority",
                "containerd cannot verify Corp Issuing CA 2; every pull pays this failure before falling back.",
                {"endpoint": "https://mirror.corp.example/v2", "issuer": "CN=Corp Issuing CA 2",
                 "sha256": "5f:1c:aa:90:3e:77:02:b4"},
                _fix("tls.unknown-authority@mirror.corp.example", "install Corp Root CA into certs.d/mirror.corp.example",
                     files=("/etc/containerd/certs.d/mirror.corp.example/ca.crt",)), "containerd"),
        Finding("mirror.unreachable", "warning", "mirrors", "mirror.corp.example",
                "mirror https://mirror.corp.example/v2 fails (TLS); pulls fall back to the next endpoint",
                "Each pull waits for the TLS failure first.", {"endpoint": "https://mirror.corp.example/v2",
                                                               "phase": "tls"},
                _fix("mirror.unreachable@mirror.corp.example", "move the mirror after the working one",
                     files=("/etc/containerd/certs.d/docker.io/hosts.toml",), restart="none"), "containerd"),
        Finding("proxy.bypass-missing", "warning", "proxy", "10.20.0.15:5000",
                "containerd sends 10.20.0.15:5000 (a private address) through the proxy",
                "10.20.0.15:5000 is a private address, but no NO_PROXY entry covers it.",
                {"endpoint": "http://10.20.0.15:5000/v2", "proxy": _PROXY_WITH_PASSWORD},
                _fix("proxy.bypass-missing@10.20.0.15:5000", "add 10.20.0.15 to containerd's NO_PROXY",
                     files=("/etc/systemd/system/containerd.service.d/http-proxy.conf",),
                     restart="restart containerd"), "containerd"),
        Finding("dns.slow", "warning", "dns", "mirror.corp.example",
                "mirror.corp.example took 812 ms to resolve", "Every new connection pays it: Go has no DNS cache.",
                {"host": "mirror.corp.example", "server": "10.0.0.2:53", "elapsed_ms": 812}, None, None),
        Finding("clock.skew", "warning", "clock", "clock",
                "the local clock is 4.2 s behind ntp.corp.example", "Tokens may be rejected as not yet valid.",
                {"server": "ntp.corp.example", "offset_seconds": 4.2},
                _fix("clock.skew@clock", "step the clock once with chronyc makestep", kind="command"), None),
        Finding("pull.slow-layer", "info", "pull", _LAYERS[0][0],
                "layer sha256:4abcf2066143 ran at a third of the others' throughput", "",
                {"digest": _LAYERS[0][0]}, None, None),
    ]


def _verdicts(findings: list[Finding]) -> list[Verdict]:
    """containerd works but pays the corp mirror's TLS failure on every pull; docker pulls from Docker Hub."""
    ids = {f.code: f.id for f in findings}
    return [
        Verdict("containerd", IMAGE, "degraded",
                f"containerd pulls {IMAGE}, but every pull first waits for mirror.corp.example to fail: its "
                "certificate is signed by an unknown authority (Corp Issuing CA 2) "
                "(mirror.corp.example, TLS handshake).",
                Cause("tls.unknown-authority", ids["tls.unknown-authority"], "https://mirror.corp.example/v2", "tls"),
                (ids["mirror.unreachable"], ids["tls.unknown-authority"]),
                "tls.unknown-authority@mirror.corp.example", None, (), "https://registry-1.docker.io/v2"),
        Verdict("docker", IMAGE, "ok", f"docker pulls {IMAGE} from registry-1.docker.io.",
                untested=("layer downloads: the test pull ran as containerd",),
                endpoint="https://registry-1.docker.io/v2"),
    ]


def _routes() -> list[Route]:
    verify_corp = TLSInputs(verify=True, verify_reason="system roots", ca_files=())
    return [
        Route("containerd", IMAGE, (
            Endpoint("https://mirror.corp.example/v2", "mirror.corp.example", "mirror",
                     "/etc/containerd/certs.d/docker.io/hosts.toml:4", "library/alpine", tls=verify_corp,
                     status="failed", reason="x509: certificate signed by unknown authority",
                     query="ns=docker.io"),
            Endpoint("http://10.20.0.15:5000/v2", "10.20.0.15:5000", "mirror",
                     "/etc/containerd/certs.d/docker.io/hosts.toml:7", "library/alpine",
                     proxy="http://svc:***@proxy.corp.example:3128", proxy_reason="via HTTPS_PROXY", status="ok",
                     query="ns=docker.io"),
            Endpoint("https://registry-1.docker.io/v2", "registry-1.docker.io", "upstream",
                     "default (docker.io)", "library/alpine", proxy="http://svc:***@proxy.corp.example:3128",
                     proxy_reason="via HTTPS_PROXY", credentials="/root/.docker/config.json:3 (docker.io)",
                     status="ok"),
        ), mode="CRI local pull", assumed="containerd 1.7 from dpkg"),
        Route("docker", IMAGE, (
            Endpoint("https://mirror.corp.example/v2", "mirror.corp.example", "mirror", "/etc/docker/daemon.json:5",
                     "library/alpine", status="skipped", reason="registry-mirror is ignored"),
            Endpoint("https://registry-1.docker.io/v2", "registry-1.docker.io", "upstream", "default (docker.io)",
                     "library/alpine", proxy="http://svc:***@proxy.corp.example:3128",
                     proxy_reason="via HTTPS_PROXY", status="ok"),
        ), mode="docker classic store"),
    ]


def _sources() -> list[SourceFile]:
    return [
        SourceFile("/etc/docker/daemon.json", "docker", "daemon.json", "ok",
                   values={"registry-mirror": ["https://mirror.corp.example"], "max-concurrent-downloads": 3}),
        SourceFile("/etc/systemd/system/docker.service.d/http-proxy.conf", "docker", "systemd drop-in", "ok",
                   values={"HTTPS_PROXY": _PROXY_WITH_PASSWORD}),
        SourceFile("/root/.docker/config.json", "docker", "config.json", "ok",
                   values={"auths": {"docker.io": {"auth": "s3cr3t-token"}}}),
        SourceFile("/etc/containerd/config.toml", "containerd", "config.toml", "ok",
                   values={"version": 2, "config_path": "/etc/containerd/certs.d"}),
        SourceFile("/etc/containerd/certs.d/docker.io/hosts.toml", "containerd", "hosts.toml", "ok",
                   values={"server": "https://registry-1.docker.io",
                           "hosts": ["https://mirror.corp.example/v2", "http://10.20.0.15:5000/v2"]}),
        SourceFile("/etc/containerd/certs.d/quay.io/hosts.toml", "containerd", "hosts.toml", "parse-error",
                   detail="line 3, column 9: expected '=' after a key [host]"),
        SourceFile("/etc/containerd/certs.d/ghcr.io/hosts.toml", "containerd", "hosts.toml", "missing"),
    ]


def _probes() -> dict:
    mirror_chain = [
        {"subject": "CN=mirror.corp.example", "issuer": "CN=Corp Issuing CA 2", "sans": ["mirror.corp.example"],
         "not_before": "2025-06-01", "not_after": "2026-06-01", "key": "EC P-256", "signature": "ecdsa-with-SHA256",
         "sha256": "5f:1c:aa:90:3e:77:02:b4"},
        {"subject": "CN=Corp Issuing CA 2", "issuer": "CN=Corp Root CA", "not_before": "2024-01-01",
         "not_after": "2029-01-01", "key": "RSA 4096", "signature": "sha256WithRSAEncryption",
         "problem": "issuer CN=Corp Root CA is not trusted by containerd"},
    ]
    hub_chain = [
        {"subject": "CN=*.docker.io", "issuer": "CN=Amazon RSA 2048 M02", "sans": ["*.docker.io", "docker.io"],
         "not_before": "2025-11-01", "not_after": "2026-11-30", "key": "RSA 2048", "signature": "sha256WithRSAEncryption"},
        {"subject": "CN=Amazon RSA 2048 M02", "issuer": "CN=Amazon Root CA 1", "not_after": "2030-08-23"},
    ]
    return {
        "status": "probed",
        "mirrors": {"data": {"endpoints": [
            {"runtime": "containerd", "url": "https://mirror.corp.example/v2", "error": "tls: unknown authority",
             "latency_ms": 41.0},
            {"runtime": "containerd", "url": "http://10.20.0.15:5000/v2", "latency_ms": 12.4,
             "digest": "sha256:beefed1234567890aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55"},
            {"url": "https://registry-1.docker.io/v2", "latency_ms": 230.0,
             "digest": "sha256:beefed1234567890aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55"},
        ]}, "elapsed_ms": 412.0, "error": None},
        "tls": {"data": {"chains": [
            {"host": "mirror.corp.example", "verdict": "unknown authority: Corp Root CA is not in containerd's trust",
             "chain": mirror_chain, "failing": 1},
            {"host": "registry-1.docker.io", "verdict": "verified with the system roots", "verified": True,
             "chain": hub_chain},
        ]}, "elapsed_ms": 380.0, "error": None},
        "dns": {"data": {"lookups": [
            {"name": "mirror.corp.example", "addresses": ["10.20.0.40"], "source": "dns", "server": "10.0.0.2:53",
             "resolver": "system", "elapsed_ms": 812.0, "error": None},
            {"name": "registry-1.docker.io", "addresses": ["54.227.20.253", "3.216.34.172"], "source": "dns",
             "server": "10.0.0.2:53", "resolver": "system", "elapsed_ms": 24.5, "error": None},
            {"name": "proxy.corp.example", "addresses": [], "source": "dns", "server": "10.0.0.2:53",
             "resolver": "system", "elapsed_ms": 3.1, "error": "nxdomain"},
        ]}, "elapsed_ms": 840.0, "error": None},
        "clock": {"data": {"ntp": [
            {"server": "ntp.corp.example", "address": "10.0.0.5:123", "offset_seconds": 4.2, "delay_seconds": 0.0021,
             "stratum": 2},
            {"server": "time.cloudflare.com", "error": "timeout"},
        ], "registry_dates": [{"server": "registry-1.docker.io", "offset_seconds": 4.0}],
            "sync": "chronyd configured, not synchronised"}, "elapsed_ms": 2004.0, "error": None},
        "proxy": {
            "shell": {"HTTP_PROXY": "", "HTTPS_PROXY": "", "NO_PROXY": ""},
            "daemons": {
                "containerd": {"effective": {"HTTP_PROXY": "", "HTTPS_PROXY": _PROXY_WITH_PASSWORD,
                                             "NO_PROXY": "localhost,127.0.0.1"},
                               "sources": {"HTTPS_PROXY": "/etc/systemd/system/containerd.service.d/http-proxy.conf:2"}},
                "docker": {"effective": {"HTTP_PROXY": "", "HTTPS_PROXY": _PROXY_WITH_PASSWORD, "NO_PROXY": ""},
                           "sources": {"HTTPS_PROXY": "/etc/systemd/system/docker.service.d/http-proxy.conf:2"}},
            },
            "live": {"data": {"endpoints": [
                {"url": "http://10.20.0.15:5000/v2", "result": "ok", "proxy": _PROXY_WITH_PASSWORD},
                {"url": "https://registry-1.docker.io/v2", "result": "CONNECT 200"},
            ]}, "elapsed_ms": 120.0, "error": None},
        },
    }


def _pull() -> dict:
    starts = (0.0, 2.0, 3.5)
    timings = (
        {"dns": 24.5, "connect": 11.0, "tls": 38.0, "ttfb": 120.0, "transfer": 1380.0, "total": 1573.5},
        {"dns": 20.1, "connect": 10.2, "tls": 35.5, "ttfb": 95.0, "transfer": 260.0, "total": 420.8},
        {"dns": None, "connect": None, "tls": None, "ttfb": 60.0, "transfer": 75.0, "total": 135.0},
    )
    layers = []
    for (digest, size), started, t in zip(_LAYERS, starts, timings):
        layers.append({"digest": digest, "size": size, "media_type": "application/vnd.oci.image.layer.v1.tar+gzip",
                       "endpoint": "https://registry-1.docker.io/v2", "attempts": 2 if started == 0.0 else 1,
                       "ok": True, "timings_ms": t, "started_ms": started,
                       "bytes_per_second": round(size / (t["total"] / 1000))})
    return {"image": IMAGE, "runtime": "containerd", "endpoint": "https://registry-1.docker.io/v2", "concurrency": 3,
            "wall_ms": 1580.0, "bytes": sum(s for _, s in _LAYERS), "ok": True,
            "manifest": {"digest": "sha256:beefed1234567890aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55",
                         "media_type": "application/vnd.oci.image.index.v1+json", "platform": "linux/amd64",
                         "platform_digest": "sha256:cafe00112233445566778899aabbccddeeff00112233445566778899aabbccdd"},
            "layers": layers}


def demo_report(image: str = IMAGE) -> Report:
    """The recorded report (a fresh object each call)."""
    findings = assign_ids(_findings())
    return Report(
        generated_at="2026-01-01T00:00:00Z",
        root="/host",
        hostname="node-a",
        images=[image],
        runtimes=[RuntimeInfo("docker", ("/usr/bin/dockerd",), ("/etc/docker/daemon.json",)),
                  RuntimeInfo("containerd", ("/usr/bin/containerd",), ("/etc/containerd/config.toml",))],
        routes=_routes(),
        findings=findings,
        sources=_sources(),
        probes=_probes(),
        pull=_pull(),
        kubelet={"detected": True, "runtime": "containerd", "endpoint": "unix:///run/containerd/containerd.sock",
                 "source": "/var/lib/kubelet/config.yaml:3"},
        summaries={"containerd": {"version": "1.7.24", "version_source": "dpkg", "config_path": "/etc/containerd/certs.d",
                                  "config_path_source": "/etc/containerd/config.toml:10", "pull_mode": "local pull",
                                  "max_concurrent_downloads": 3},
                   "docker": {"store": "classic", "max_concurrent_downloads": 3,
                              "max_concurrent_downloads_source": "/etc/docker/daemon.json:9"}},
        notes=[],
        errors=[],
        mode="network",
        verdicts=_verdicts(findings),
    )


def demo_pull_frames() -> list[dict[str, PullLayer]]:
    """Two progress snapshots of the demo pull (fixed times, so throughput is deterministic)."""
    first = {d: PullLayer(d, size // 4, size, 0.0, 0.5) for d, size in _LAYERS}
    second = {d: PullLayer(d, size // 2, size, 0.0, 1.0) for d, size in _LAYERS}
    return [first, second]
