"""Review regressions for the network layer (net/)."""

from __future__ import annotations

import datetime
import os
import pty
import select
import sys
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

_BUILD = """
import sys
from regtui.host import Host
from regtui.model import TLSInputs
from regtui.net.http import build_ssl_context
_, setup = build_ssl_context(Host.from_args(sys.argv[1], {}),
                             TLSInputs(client_cert=(("/client.cert", "/client.key"),), system_roots=False))
print("PROBLEMS", setup.problems, flush=True)
"""


def _encrypted_pair(root: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "client")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    (root / "client.cert").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (root / "client.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"hunter2")))


def test_encrypted_client_key_is_a_problem_not_a_passphrase_prompt(tmp_path: Path) -> None:
    """An encrypted client key on a terminal is reported at once; OpenSSL never prompts for a passphrase."""
    _encrypted_pair(tmp_path)
    pid, fd = pty.fork()
    if pid == 0:  # the child has the pty as its controlling terminal, as an SSH session would
        os.execv(sys.executable, [sys.executable, "-c", _BUILD, str(tmp_path)])
    out = b""
    deadline = time.monotonic() + 20
    try:
        while b"]\r\n" not in out.partition(b"PROBLEMS")[2] and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
    finally:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
        os.close(fd)
    text = out.decode(errors="replace")
    assert "pass phrase" not in text.lower()
    assert "PROBLEMS" in text and "encrypted" in text
