"""The test lab: real registries, proxy, NTP, DNS and runtimes on loopback."""
