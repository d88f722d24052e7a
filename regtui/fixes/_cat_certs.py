"""Trusting a registry's CA where each runtime reads it, after its fingerprint is shown and confirmed.

- Docker: ``/etc/docker/certs.d/<host[:port]>/ca.crt`` (cert-file mode; when that directory has a
  hosts.toml, dockerd's containerd store reads only the CAs it names, so ``ca`` is added there too);
- CRI-O/podman: ``/etc/containers/certs.d/<host[:port]>/ca.crt``;
- containerd: the namespace's hosts directory; with a hosts.toml, the CA file next to it and its
  ``ca`` key (root level for the upstream, and any ``[host."..."]`` table naming the upstream
  itself; else the endpoint's ``[host."..."]`` table); without
  one, ``ca.crt`` in cert-file mode;
- k3s: a CA file under /etc/rancher/k3s and ``configs."<host>".tls.ca_file`` in registries.yaml.

The certificate is the trust anchor of the chain: the one the TLS probe captured (``params.ca_pem``
or the probe data's ``ca_candidates``), whose SHA-256 must equal the fingerprint the finding shows,
or, when the server does not send its root, the root the user supplies (``--ca-file``), which must
have issued the last certificate the server sends; without it the fix is manual.
"""

from __future__ import annotations

import posixpath
from typing import Any, Mapping
from urllib.parse import urlsplit

from regtui.fixes._context import Context
from regtui.fixes._helpers import ManualOnly, PlanRefused, edit_toml, edit_yaml, require
from regtui.fixes._tomledit import TomlDoc

__all__ = ["install_ca", "certificate_pem"]


def certificate_pem(ctx: Context) -> tuple[bytes, str, str]:
    """(PEM bytes, SHA-256 of the DER, subject) of the trust anchor the fix installs.

    That is the certificate the runtime's chain ends with: the root the server sent (or the
    self-signed certificate, or a root found in another runtime's CA files), whose SHA-256 the
    finding shows. When the server does not send its root (``anchor_missing``) the root must be
    supplied (``--ca-file``) and must have issued the last certificate sent; without it the fix
    is manual and says so. Trusting the intermediate instead would work in Go only until the
    intermediate is reissued.
    """
    p = ctx.params
    fp = str(p.get("ca_pem_fingerprint") or "").lower().replace(":", "")
    require(fp, "the finding carries no certificate fingerprint")
    missing = str(p.get("anchor_missing") or "")
    if ctx.supplied_ca is not None:
        cert = _supplied_anchor(ctx, fp, missing)
    elif missing:
        raise ManualOnly(_supply_steps(ctx, missing))
    else:
        cert = _captured(ctx, fp)
        if cert is None:
            raise PlanRefused("the certificate itself is not at hand: run the fix with the network (not --offline) "
                              "so the TLS probe captures it")
    from regtui.net.tls.certs import cert_pem, fingerprint

    return cert_pem(cert).encode("ascii"), fingerprint(cert), cert.subject.rfc4514_string()


def _captured(ctx: Context, fp: str) -> Any:
    """The certificate with SHA-256 ``fp`` the TLS probe captured (``params.ca_pem`` or ``ca_candidates``), or ``None``."""
    from cryptography import x509

    from regtui.net.tls.certs import fingerprint

    p = ctx.params
    pem = p.get("ca_pem")
    if not pem:
        tls_data = ctx.probes.get("tls")
        candidates = tls_data.get("ca_candidates") if isinstance(tls_data, Mapping) else None
        entry = (candidates or {}).get(fp) or (candidates or {}).get(p.get("ca_pem_fingerprint"))
        pem = entry.get("pem") if isinstance(entry, dict) else None
    if not pem:
        return None
    data = pem.encode() if isinstance(pem, str) else bytes(pem)
    try:
        cert = x509.load_pem_x509_certificate(data)
    except ValueError:
        raise PlanRefused("the captured certificate is not valid PEM") from None
    got = fingerprint(cert)
    require(got == fp, f"the captured certificate's SHA-256 ({got}) is not the finding's ({fp}); nothing planned")
    return cert


def _supply_steps(ctx: Context, missing: str) -> str:
    """What the user must supply when the server does not send its root."""
    fx = ctx.finding.fix
    fix_id = fx.id if fx else ctx.finding.code
    return (f"The server does not send its root CA '{missing}', and it is not on this host, so regtui cannot "
            f"capture it (trusting the intermediate {ctx.params.get('ca_subject') or ''} would break when it is "
            f"reissued). Get that root certificate (PEM) from the registry's operators, check its SHA-256 out of "
            f"band, then run: regtui fix {fix_id} --ca-file ROOT.pem --apply")


def _supplied_anchor(ctx: Context, fp: str, missing: str) -> Any:
    """The certificate of ``--ca-file`` that ends the chain: the finding's anchor, or the root that issued
    the last certificate sent when the server does not send its root."""
    from regtui.net.tls.certs import fingerprint, name_text, parse_pem_bundle, self_issued
    from regtui.net.tls.verify import signature_valid

    supplied, _ = parse_pem_bundle(ctx.supplied_ca or b"")
    require(supplied, "the --ca-file holds no PEM certificate")
    if not missing:
        found = next((c for c in supplied if fingerprint(c) == fp), None)
        require(found is not None, f"the --ca-file does not hold the certificate the chain ends with "
                f"({ctx.params.get('ca_subject') or ''}, SHA-256 {fp}); nothing planned")
        return found
    top = _captured(ctx, fp)
    if top is None:
        raise PlanRefused("the chain the server sends is not at hand: run the fix with the network (not --offline) "
                          "so the TLS probe captures it and the supplied root can be checked against it")
    issuer = next((c for c in supplied if c.subject == top.issuer and signature_valid(top, c)), None)
    if issuer is None:
        raise PlanRefused(f"no certificate in the --ca-file issued {name_text(top.subject)} (the last certificate "
                          f"the server sends, issued by '{missing}'); nothing planned")
    if not (self_issued(issuer) and signature_valid(issuer, issuer)):
        raise PlanRefused(f"'{name_text(issuer.subject)}' in the --ca-file issued the chain but is itself issued "
                          f"by '{name_text(issuer.issuer)}': supply the root CA, which the runtime must trust "
                          "(the server must send every intermediate; Go does not fetch them)")
    return issuer


def _write_ca(ctx: Context, path: str, pem: bytes, fp: str, subject: str) -> str:
    """Write the CA at ``path``, or beside it when another file is there; returns the path used (or already holding it)."""
    existing = ctx.read(path)
    if existing == pem:
        return path
    if existing is not None:
        path = posixpath.join(posixpath.dirname(path), f"regtui-{fp[:16]}.crt")
        if ctx.read(path) == pem:
            return path
    ctx.write(path, pem, mode=0o644, note=f"certificate: {subject}, SHA-256 {fp}")
    return path


def _add_ca_key(doc: TomlDoc, table: tuple[Any, ...], ca: str) -> None:
    key = table + ("ca",)
    current = doc.get(key)
    if current is None:
        doc.set(key, ca)
    elif isinstance(current, str):
        if current != ca:
            doc.set(key, [current, ca])
    elif isinstance(current, list) and ca not in current:
        doc.set(key, current + [ca])


def _netloc(url: str) -> str:
    """``host[:port]`` of a hosts.toml URL (a missing scheme means https)."""
    try:
        return urlsplit(url if "://" in url else f"https://{url}").netloc.lower()
    except ValueError:
        return ""


def _hosts_table(doc: TomlDoc, wanted: str) -> tuple[Any, ...]:
    """The hosts.toml table for an endpoint: ``("host", url)`` when one matches, else the root (upstream)."""
    if not wanted:
        return ()
    key = wanted.rstrip("/")
    key = key[:-3] if key.endswith("/v2") else key
    hosts = doc.get(("host",)) or {}
    for name in hosts:
        if name.rstrip("/") == key or name.rstrip("/").removesuffix("/v2") == key:
            return ("host", name)
    return ("host", key)


def install_ca(ctx: Context) -> None:
    """``tls.unknown-authority``/``tls.self-signed``/``tls.trust-differs``/``tls.intercepted``: trust the CA."""
    p = ctx.params
    pem, fp, subject = certificate_pem(ctx)
    runtime = str(p.get("runtime") or ctx.finding.runtime or "")
    via = str(p.get("via") or "")
    install_to = str(p.get("install_to") or "")
    require(install_to.startswith("/"), "the finding does not say where the runtime reads a CA")
    if ctx.supplied_ca is not None:
        ctx.summary = f"trust {subject} (from --ca-file) for {p.get('host') or ctx.finding.subject} in {runtime}"
    ctx.confirm = (f"trust {subject} for {p.get('host') or ctx.finding.subject} in {runtime}: check its SHA-256 {fp} "
                   "out of band (with the registry's or network team's records) before you agree")
    if via == "certs.d" or install_to.endswith(".crt"):
        used = _write_ca(ctx, install_to, pem, fp, subject)
        hosts_toml = posixpath.join(posixpath.dirname(install_to), "hosts.toml")
        data = ctx.read(hosts_toml)
        if data and data.strip():
            ctx.note(f"{hosts_toml} exists: with Docker's containerd image store only the CAs it names are read, "
                     "so the CA is added to its ca key too")
            edit_toml(ctx, hosts_toml, lambda doc: _add_ca_key(doc, (), posixpath.basename(used)))
        return
    if via == "registries.yaml":
        ca_file = str(p.get("ca_file") or "")
        require(ca_file.startswith("/"), "the finding names no CA file for registries.yaml")
        used = _write_ca(ctx, ca_file, pem, fp, subject)
        host = str(p.get("host") or ctx.finding.subject)
        key = str(p.get("key") or "")
        config_host = key.split('"')[1] if key.count('"') >= 2 else host

        def edit(doc):  # type: ignore[no-untyped-def]
            current = doc.get(("configs", config_host, "tls", "ca_file"))
            require(current in (None, used), f"configs.{config_host}.tls.ca_file already names {current}; "
                    "append the certificate to that file by hand")
            doc.set(("configs", config_host, "tls", "ca_file"), used)

        edit_yaml(ctx, install_to, edit, create=True)
        ctx.restart = "restart k3s"
        return
    if via.startswith("hosts.toml") or install_to.endswith("hosts.toml"):
        directory = posixpath.dirname(install_to)
        _require_containerd_reads(ctx, directory)
        data = ctx.read(install_to)
        if data is None or not data.strip():
            _write_ca(ctx, posixpath.join(directory, "ca.crt"), pem, fp, subject)
            ctx.note(f"{directory} has no hosts.toml: containerd reads *.crt there (cert-file mode)")
        else:
            ca_file = str(p.get("ca_file") or posixpath.join(directory, f"regtui-{fp[:16]}.crt"))
            used = _write_ca(ctx, ca_file, pem, fp, subject)
            table = str(p.get("hosts_toml_table") or "")
            wanted = table.split('"')[1] if table.count('"') >= 2 else ""
            rel = posixpath.basename(used) if posixpath.dirname(used) == directory else used

            def edit(doc: TomlDoc) -> None:
                where = _hosts_table(doc, wanted)
                if where and not doc.has(where):
                    raise ManualOnly(f"{install_to} has no [host.\"{wanted}\"] table for this endpoint; add the CA "
                                     "where the endpoint is configured by hand")
                _add_ca_key(doc, where, rel)
                if not where:
                    # A [host."..."] table naming the upstream itself is tried first, with its own TLS
                    # settings only (it does not inherit the root's ``ca``): it needs the CA too.
                    for name in doc.get(("host",)) or {}:
                        if _netloc(str(name)) == endpoint_host:
                            _add_ca_key(doc, ("host", name), rel)

            endpoint_host = str(p.get("host") or ctx.finding.subject).lower()
            edit_toml(ctx, install_to, edit)
        return
    raise ManualOnly(f"regtui does not know where {runtime} reads a CA ({via or install_to})")


def _require_containerd_reads(ctx: Context, directory: str) -> None:
    """Refuse when containerd's CRI reads no hosts directory there (``config_path`` unset or elsewhere).

    A CA written there would change nothing for kubelet and crictl (only ``ctr --hosts-dir``
    reads it), and the re-check, which follows the CRI, would still report the finding.
    """
    if ctx.finding.runtime != "containerd":
        return
    try:
        from regtui.fixes._helpers import containerd_config

        cfg = containerd_config(ctx)
    except Exception:  # the config cannot be read: the config panel says why; the CA goes where asked
        return
    root = posixpath.dirname(directory)
    if root not in cfg.roots:
        raise PlanRefused(f"containerd's CRI does not read {root} (config_path = {cfg.config_path!r}), so a CA there "
                          "is not used by kubelet or crictl (only `ctr --hosts-dir` reads it): set config_path first "
                          "(the config.hosts-dir-unused fix, then restart containerd), then apply this fix")
