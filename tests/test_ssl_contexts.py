"""SSL contexts are shared between endpoints with the same trust inputs, and only while the bytes stay the same."""

from __future__ import annotations

from pathlib import Path

from lab.pki import LabPKI

from regtui.host import Host
from regtui.model import TLSInputs
from regtui.net.http import build_ssl_context


def _subjects(ctx) -> set[str]:
    return {"/".join("=".join(pair) for rdn in c["subject"] for pair in rdn) for c in ctx.get_ca_certs()}


def _pem(pki: LabPKI, where: Path) -> bytes:
    return pki.write_ca(where).read_bytes()


def _root_with(tmp_path: Path, *cas: LabPKI) -> Host:
    bundle = tmp_path / "etc/ssl/certs/ca-certificates.crt"
    bundle.parent.mkdir(parents=True)
    bundle.write_bytes(b"".join(_pem(ca, tmp_path / f"pki-{i}") for i, ca in enumerate(cas)))
    return Host.from_args(tmp_path, {})


def test_same_inputs_share_one_context_with_separate_evidence(tmp_path: Path) -> None:
    """Two endpoints with the same bundle and CA file get one context; their TLS evidence is not one shared list."""
    system, extra = LabPKI("system"), LabPKI("extra")
    host = _root_with(tmp_path, system)
    (tmp_path / "ca.crt").write_bytes(_pem(extra, tmp_path / "extra"))
    inputs = TLSInputs(ca_files=("/ca.crt",))
    first, setup1 = build_ssl_context(host, inputs)
    second, setup2 = build_ssl_context(host, TLSInputs(ca_files=("/ca.crt",), verify_reason="another endpoint"))
    assert second is first
    assert setup1 == setup2 and setup1.system_bundle == "/etc/ssl/certs/ca-certificates.crt"
    assert setup1.ca_files == ["/ca.crt"]
    setup1.problems.append("changed by one caller")
    assert setup2.problems == [] and build_ssl_context(host, inputs)[1].problems == []
    assert any("system" in s for s in _subjects(first)) and any("extra" in s for s in _subjects(first))


def test_an_edited_ca_file_gives_a_new_context(tmp_path: Path) -> None:
    """After a CA file is rewritten (a fix, then a re-check in the same process), the new CA is trusted and the old is not."""
    old, new = LabPKI("old-ca"), LabPKI("new-ca")
    host = _root_with(tmp_path, LabPKI("system"))
    ca_file = tmp_path / "ca.crt"
    ca_file.write_bytes(_pem(old, tmp_path / "old"))
    before, _ = build_ssl_context(host, TLSInputs(ca_files=("/ca.crt",)))
    ca_file.write_bytes(_pem(new, tmp_path / "new"))
    after, _ = build_ssl_context(host, TLSInputs(ca_files=("/ca.crt",)))
    assert after is not before
    assert any("new-ca" in s for s in _subjects(after)) and not any("old-ca" in s for s in _subjects(after))


def test_an_edited_bundle_or_verify_setting_gives_a_new_context(tmp_path: Path) -> None:
    """The system bundle's bytes, and whether verification is on, are part of what makes contexts the same."""
    host = _root_with(tmp_path, LabPKI("first"))
    first, _ = build_ssl_context(host, TLSInputs())
    unverified, _ = build_ssl_context(host, TLSInputs(verify=False))
    assert unverified is not first and unverified.check_hostname is False
    (tmp_path / "etc/ssl/certs/ca-certificates.crt").write_bytes(_pem(LabPKI("second"), tmp_path / "second"))
    second, _ = build_ssl_context(host, TLSInputs())
    assert second is not first and any("second" in s for s in _subjects(second))


def test_a_replaced_client_certificate_is_loaded_again(tmp_path: Path) -> None:
    """A client certificate and key rewritten in place give a new context; a missing one is a problem, not a cached success."""
    ca = LabPKI("client-ca")
    host = _root_with(tmp_path, ca)
    cert, key = tmp_path / "client.cert", tmp_path / "client.key"
    one = ca.issue(tmp_path / "one", client=True)
    cert.write_bytes(one.cert_file.read_bytes())
    key.write_bytes(one.key_file.read_bytes())
    inputs = TLSInputs(client_cert=(("/client.cert", "/client.key"),))
    first, setup = build_ssl_context(host, inputs)
    assert setup.client_cert == [("/client.cert", "/client.key")]
    assert build_ssl_context(host, inputs)[0] is first
    two = ca.issue(tmp_path / "two", client=True)
    cert.write_bytes(two.cert_file.read_bytes())
    key.write_bytes(two.key_file.read_bytes())
    assert build_ssl_context(host, inputs)[0] is not first
    cert.unlink()
    _, gone = build_ssl_context(host, inputs)
    assert gone.client_cert == [] and any("client certificate /client.cert" in p for p in gone.problems)


def test_threads_do_not_share_a_context(tmp_path: Path) -> None:
    """Another thread builds its own context for the same inputs (httpcore sets ALPN on a context as it connects)."""
    import threading

    host = _root_with(tmp_path, LabPKI("system"))
    here, _ = build_ssl_context(host, TLSInputs())
    there: list[object] = []
    worker = threading.Thread(target=lambda: there.extend(build_ssl_context(host, TLSInputs())[0] for _ in range(2)))
    worker.start()
    worker.join(30)
    assert len(there) == 2 and there[0] is there[1] and there[0] is not here
    assert build_ssl_context(host, TLSInputs())[0] is here


def test_a_fifo_named_as_client_certificate_is_a_problem_not_a_hang(tmp_path: Path) -> None:
    """A client certificate path that is a FIFO is never opened (OpenSSL would wait on it forever): a problem instead."""
    import os
    import threading

    host = _root_with(tmp_path, LabPKI("system"))
    os.mkfifo(tmp_path / "client.cert")
    got: list[object] = []
    worker = threading.Thread(target=lambda: got.append(build_ssl_context(
        host, TLSInputs(client_cert=(("/client.cert", ""),)))[1]), daemon=True)
    worker.start()
    worker.join(20)
    assert got, "building the context hung on the FIFO"
    assert got[0].client_cert == [] and got[0].problems == ["client certificate /client.cert: /client.cert is not a regular file"]
