"""One package per container runtime (docker, containerd, crio, k3s), each exporting ``detect`` and
``load``; :mod:`regtui.runtimes.view` is what they hand the engine, :mod:`regtui.runtimes.endpoints`
the endpoint builder their planners share."""
