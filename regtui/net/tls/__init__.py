"""TLS chains as the runtimes meet them: capture what a server sends, then judge it by Go's rules.

- :mod:`.certs`: certificates as Go reads them (names, extensions, validity, signature and key
  facts) and :class:`~.certs.CertInfo`, the description the certificate panel shows;
- :mod:`.capture`: one connection per endpoint, direct or through the daemon's proxy, that
  records the chain the server sends and the registry's ``WWW-Authenticate`` challenge;
- :mod:`.trust`: the runtime's pool exactly as Go builds it (system bundle under the root plus
  the endpoint's CA files), indexed by subject for chain building;
- :mod:`.verify`: the port of Go's ``crypto/x509`` ``Certificate.Verify`` and its error texts;
- :mod:`.diagnose`: a lenient walk of the chain that names every defect in plain words.
"""
