"""The test lab: real registries, proxy, NTP, DNS and runtimes on loopback.

Plain helpers, usable outside pytest (e.g. by a benchmark script); each daemon is a class with
``start()``/``stop()`` and context-manager support, its own temp dir and log file:

- :mod:`lab.procs`: process plumbing (binaries, free ports, bounded waits, process groups)
- :mod:`lab.pki`: root -> intermediate -> leaf certificates and broken variants
- :mod:`lab.registry`: ``docker-registry`` (TLS, htpasswd, pull-through, plain HTTP)
- :mod:`lab.images`: OCI layouts built in Python, pushed with skopeo
- :mod:`lab.proxy`: tinyproxy (open, BasicAuth, CONNECT denied)
- :mod:`lab.ntp`: chronyd (true or faketime-shifted clock) and an SNTP client
- :mod:`lab.dns`: dnsmasq for lab zones
- :mod:`lab.sockets`: TCP/UDP black holes and closed ports
- :mod:`lab.namespaces`: commands with a lab ``/etc/hosts`` (``unshare -m``)
- :mod:`lab.containerd`: containerd, ``ctr`` pulls, ``containerd config dump``
- :mod:`lab.dockerd`: dockerd 20.10 and ``docker pull``

:mod:`lab.fixtures` wraps them as pytest fixtures; :mod:`lab.require` decides skip or fail.
"""
