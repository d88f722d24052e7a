"""OCI distribution client and the instrumented test pull.

Modules (import the one you need; the package itself imports only :mod:`regtui.net`, so
``regtui check --offline`` never pays for httpx):

- :mod:`regtui.registry.pull`: :func:`~regtui.registry.pull.test_pull`, the runtime-faithful test pull
  (fallback rules per runtime, parallel verified downloads, per-layer timings, findings);
- :mod:`regtui.registry.flavors`: :class:`~regtui.registry.flavors.Flavor`, each runtime's fallback rules;
- :mod:`regtui.registry.resolution`: a reference resolved on one endpoint (manifest, index -> platform);
- :mod:`regtui.registry.client`: :class:`~regtui.registry.client.Session`, one endpoint spoken to as
  the runtime does (TLS, daemon proxy, credentials, redirects, timings);
- :mod:`regtui.registry.auth`: challenges, Basic, Bearer tokens, identity tokens;
- :mod:`regtui.registry.manifest`: media types, Accept lists, parsing, platform choice;
- :mod:`regtui.registry.blobs`: streamed, verified, resumable blob downloads;
- :mod:`regtui.registry.errors`: failures by phase, and the runtime's words for them;
- :mod:`regtui.registry.diagnose`: findings shared with the mirrors probe.
"""

# regtui.net keeps httpx's CLI module (and with it rich and click) from loading; it must be
# imported before any submodule here imports httpx.
import regtui.net  # noqa: E402,F401
