"""Real ctr as referee: one URL as two endpoints (``server`` without ``ca``, ``[host]`` with it).

The hosts.toml names the lab TLS registry twice: ``server = "https://reg"`` with no CA, and
``[host."https://reg"]`` with the registry's CA (not in any system store). containerd tries the
``[host]`` table first, verifies with its CA and pulls; the server entry is only a fallback. regtui
must agree: no error finding, verdict ok, the test pull served by the ``[host]`` entry with ctr's
digest, and the fallback's TLS failure named as that endpoint's, at information level.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from lab.containerd import Containerd
from lab.images import OciImage
from lab.pullroots import containerd_root
from lab.registry import Registry
from lab.verdicts import HOSTS, check, cli_args, lab_image_ref, lab_name, verdict
from regtui.cli import main

pytestmark = pytest.mark.lab


def _root(tmp_path: Path, registry: Registry) -> tuple[Path, Path, str]:
    """(root, hosts dir, registry name): the [host] table with the CA, the server without."""
    name, root = lab_name(registry), tmp_path / "root"
    hosts_dir = containerd_root(root, name, server=f"https://{name}",
                                mirrors=[{"url": f"https://{name}", "ca": registry.ca_file}], hosts=HOSTS)
    text = (hosts_dir / name / "hosts.toml").read_text()
    assert text.startswith(f'server = "https://{name}"\n') and "\nca =" not in text.split("[host.", 1)[0]
    return root, hosts_dir, name


def _route(data: dict[str, Any]) -> list[dict[str, Any]]:
    (route,) = [r for r in data["routes"] if r["runtime"] == "containerd"]
    return route["endpoints"]


def test_ctr_and_regtui_agree_on_the_host_entry_with_the_ca(
        tmp_path: Path, registry_tls: Registry, lab_image: OciImage, containerd: Containerd,
        hosts_file_factory: Callable[[dict[str, str]], Path], capsys: pytest.CaptureFixture[str]) -> None:
    """ctr --hosts-dir pulls; regtui: no error, verdict ok, served by the [host] entry with ctr's digest."""
    root, hosts_dir, name = _root(tmp_path, registry_tls)
    image = lab_image_ref(registry_tls)
    pulled = containerd.ctr_pull(image, hosts_dir=hosts_dir, hosts_file=hosts_file_factory(HOSTS), timeout=60)
    assert pulled.ok, pulled.output[-600:]

    report, data = check(root, image, "containerd")
    v = verdict(data, "containerd")
    assert v["status"] == "ok" and v["cause"] is None and report.exit_code == 0, v
    assert not [f for f in data["findings"] if f["severity"] == "error"], [f["title"] for f in data["findings"]]

    host_entry, server = _route(data)
    assert host_entry["url"] == server["url"] == f"https://{name}/v2" and host_entry["key"] != server["key"]
    assert host_entry["source"].endswith("hosts.toml:3") and host_entry["tls"]["ca_files"]
    assert server["source"].endswith("hosts.toml:1") and not server["tls"]["ca_files"]
    assert (host_entry["status"], server["status"]) == ("ok", "failed"), "one URL, two endpoints, two results"

    served = [r for r in data["pull"]["endpoints"] if r["status"] == "ok"]
    assert [r["key"] for r in served] == [host_entry["key"]] == [v["endpoint_key"]]
    assert data["pull"]["ok"] and data["pull"]["manifest"]["digest"] == pulled.digest

    (untrusted,) = [f for f in data["findings"] if f["code"] == "tls.unknown-authority"]
    assert untrusted["severity"] == "info" and untrusted["evidence"]["endpoint_keys"] == [server["key"]]
    assert untrusted["evidence"]["fallback_only"] and untrusted["evidence"]["served_first_by_key"] == host_entry["key"]
    assert "hosts.toml:1" in untrusted["title"]

    rc = main(["check", *cli_args(root, image, "containerd")])
    out = capsys.readouterr().out
    assert rc == 0 and out.splitlines()[1] == f"[ok] containerd pulls {image} from {name}.", out
    assert "tls.unknown-authority" not in "\n".join(line for line in out.splitlines() if "ERROR" in line)


def test_without_the_test_pull_the_fallback_is_still_no_error(tmp_path: Path, registry_tls: Registry,
                                                               lab_image: OciImage) -> None:
    """--no-pull: the mirrors probe resolved on the [host] entry, so the server fallback's TLS failure is info."""
    root, _, name = _root(tmp_path, registry_tls)
    _, data = check(root, lab_image_ref(registry_tls), "containerd", no_pull=True)
    v = verdict(data, "containerd")
    assert v["status"] == "unknown" and v["cause"] is None and v["endpoint"] == f"https://{name}/v2", v
    assert not [f for f in data["findings"] if f["severity"] == "error"], [f["title"] for f in data["findings"]]
    (untrusted,) = [f for f in data["findings"] if f["code"] == "tls.unknown-authority"]
    assert untrusted["severity"] == "info" and untrusted["evidence"]["endpoint_keys"] == [_route(data)[1]["key"]]


def test_the_server_entry_without_the_ca_alone_fails_like_ctr(
        tmp_path: Path, registry_tls: Registry, lab_image: OciImage, containerd: Containerd,
        hosts_file_factory: Callable[[dict[str, str]], Path]) -> None:
    """Control: with the [host] table lacking the CA too, ctr fails on x509 and regtui says fails, same cause."""
    name, root = lab_name(registry_tls), tmp_path / "root"
    hosts_dir = containerd_root(root, name, server=f"https://{name}", mirrors=[{"url": f"https://{name}"}], hosts=HOSTS)
    image = lab_image_ref(registry_tls)
    pulled = containerd.ctr_pull(image, hosts_dir=hosts_dir, hosts_file=hosts_file_factory(HOSTS), timeout=60)
    assert not pulled.ok and "x509: certificate signed by unknown authority" in pulled.output
    _, data = check(root, image, "containerd")
    v = verdict(data, "containerd")
    assert v["status"] == "fails" and v["cause"]["code"] == "tls.unknown-authority", v
    (untrusted,) = [f for f in data["findings"] if f["code"] == "tls.unknown-authority"]
    assert untrusted["severity"] == "error" and "fallback_only" not in untrusted["evidence"]
