"""Certificates panel: per TLS endpoint, the presented chain as a tree, the failing certificate marked."""

from __future__ import annotations

import shlex
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets.tree import TreeNode

from regtui.tui.data import Copyable, endpoint_reproducers, first_value, panel_findings, probe
from regtui.tui.widgets.base import Panel, PlainTree, tree_nodes
from regtui.tui.widgets.mirrors import probe_rows

__all__ = ["CertsPanel"]

_CERT_FIELDS = (("issuer", "issuer"), ("sans", "SANs"), ("not_before", "not before"), ("not_after", "not after"),
                ("key", "key"), ("signature", "signature"), ("sha256", "sha256"), ("fingerprint", "sha256"))


def tls_records(value: Any) -> list[dict[str, Any]]:
    """Per-endpoint chains from the TLS probe (``endpoints`` + ``captures``), or generic records."""
    if not (isinstance(value, dict) and isinstance(value.get("endpoints"), list) and "captures" in value):
        return probe_rows(value)
    captures = value.get("captures") or {}
    out: dict[str, dict[str, Any]] = {}
    for row in value["endpoints"]:
        host = str(row.get("host") or "?")
        status = row.get("status") or "?"
        verdict = row.get("verdict") or {}
        capture = captures.get(row.get("capture")) or {}
        chain = [_cert(c) for c in capture.get("certificates") or verdict.get("path") or []]
        if status == "trusted":
            words = f"trusted by {row.get('runtime')}"
        elif status == "not-verified":
            words = f"{row.get('runtime')} does not verify it"
        elif status == "no-chain":
            words = f"no chain: {capture.get('error') or 'not captured'}"
        else:
            words = f"rejected by {row.get('runtime')}: {verdict.get('go_reason') or verdict.get('go_error') or '?'}"
        failing = None
        if status == "rejected" and chain:
            failing = next((i for i, c in enumerate(chain) if (c.get("days_left") or 0) < 0), len(chain) - 1)
            chain[failing]["problem"] = ", ".join(verdict.get("problems") or []) or words
        rec = {"host": host, "runtime": row.get("runtime"), "verdict": words, "chain": chain, "failing": failing,
               "ok": status == "trusted", "error": None if status in ("trusted", "not-verified") else words}
        # One node per host: a rejection on any runtime is what the user needs to see first.
        if host not in out or (out[host]["ok"] and not rec["ok"]):
            out[host] = rec
    return list(out.values())


def _cert(c: dict[str, Any]) -> dict[str, Any]:
    key = " ".join(str(x) for x in (c.get("key_type"), c.get("key_size")) if x)
    return {**c, "key": c.get("key") or key, "signature": c.get("signature") or c.get("signature_algorithm")}


class CertsPanel(Panel):
    """Endpoint -> chain (leaf first) -> certificate details; the verdict in words per endpoint."""

    panel = "certs"

    def compose_body(self) -> ComposeResult:
        """A tree of endpoints and their chains."""
        tree: PlainTree = PlainTree("endpoints", id="certs-tree", classes="panel-content")
        tree.show_root = False
        yield tree

    def _tls_endpoints(self, data: dict[str, Any]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for route in data.get("routes", []):
            for ep in route.get("endpoints", []):
                if ep["url"].startswith("https://") and ep.get("status") != "skipped":
                    out.setdefault(ep["host"], {"ep": ep, "image": route["image"], "runtimes": []})
                    out[ep["host"]]["runtimes"].append(route["runtime"])
        return out

    def render_body(self, data: dict[str, Any], state: str) -> None:
        """Rebuild the tree: live chains when probed, else the TLS inputs each runtime will use."""
        tree = self.query_one("#certs-tree", PlainTree)
        expanded = {n.data for n in tree_nodes(tree.root) if n.is_expanded and n.data}
        tree.clear()
        endpoints = self._tls_endpoints(data)
        bad_hosts: dict[str, list[dict[str, Any]]] = {}
        for f in panel_findings(data, "certs"):
            bad_hosts.setdefault(f["subject"], []).append(f)
        chains = tls_records(probe(data, "certs"))
        seen: set[str] = set()
        for rec in chains:
            host = str(first_value(rec, ("host", "endpoint", "server", "url")) or "?")
            host = host.split("://", 1)[-1].split("/", 1)[0]
            seen.add(host)
            self._endpoint(tree.root, host, rec, endpoints.get(host), bad_hosts.get(host, []), expanded)
        for host, info in endpoints.items():
            if host not in seen:
                self._endpoint(tree.root, host, None, info, bad_hosts.get(host, []), expanded)
        if not tree.root.children:
            tree.root.add_leaf(Text("no TLS endpoint in any route", style=self.st("dim")))

    def _endpoint(self, root: TreeNode[Any], host: str, rec: dict[str, Any] | None, info: dict[str, Any] | None,
                  findings: list[dict[str, Any]], expanded: set[Any]) -> None:
        errors = [f for f in findings if f["severity"] == "error"]
        verdict = None
        if rec is not None:
            verdict = first_value(rec, ("verdict", "summary", "status"))
            if verdict is None:
                verdict = "verified" if rec.get("verified") or rec.get("ok") else (rec.get("error") or "not verified")
        elif errors:
            verdict = errors[0]["title"]
        elif info and not info["ep"]["tls"].get("verify", True):
            verdict = "verification disabled"
        else:
            verdict = "not probed"
        style = self.st("bad") if errors or (rec is not None and rec.get("error")) else (
            self.st("ok") if rec is not None and str(verdict).startswith(("ok", "verified", "valid")) else self.st("dim"))
        label = Text(("✗ " if errors else "✓ " if rec is not None and not errors else "· ") + host, style=self.st("key"))
        label.append(f"  {verdict}", style=style)
        node = root.add(label, data=f"host:{host}", expand=bool(errors) or f"host:{host}" in expanded or rec is not None)
        if info:
            tls = info["ep"].get("tls", {})
            trust = "system roots" if tls.get("system_roots", True) else "no system roots"
            if tls.get("ca_files"):
                trust += " + " + ", ".join(tls["ca_files"])
            node.add_leaf(Text(f"runtimes: {', '.join(info['runtimes'])}; verify: "
                               f"{'yes' if tls.get('verify', True) else 'NO'}; trust: {trust}", style=self.st("dim")))
        chain = rec.get("chain") if rec else None
        failing = rec.get("failing") if rec else None
        for i, cert in enumerate(chain or []):
            if not isinstance(cert, dict):
                continue
            is_bad = failing == i or bool(cert.get("problem") or cert.get("error"))
            role = "leaf" if i == 0 else ("root" if cert.get("is_root") or cert.get("self_signed") and i else f"#{i}")
            cl = Text(("✗ " if is_bad else "  ") + f"{role}: ", style=self.st("bad") if is_bad else self.st("key"))
            cl.append(str(cert.get("subject", "?")), style=self.st("bad") if is_bad else "")
            if is_bad and (cert.get("problem") or cert.get("error")):
                cl.append(f"  {cert.get('problem') or cert.get('error')}", style=self.st("bad"))
            cnode = node.add(cl, data=f"cert:{host}:{i}", expand=is_bad or f"cert:{host}:{i}" in expanded)
            for key, label_ in _CERT_FIELDS:
                if cert.get(key) not in (None, "", []):
                    val = cert[key]
                    val = ", ".join(map(str, val)) if isinstance(val, list) else val
                    cnode.add_leaf(f"{label_}: {val}")
        for f in findings:
            node.add_leaf(Text(f"{f['code']}: {f['title']}", style=self.st("bad") if f["severity"] == "error"
                               else self.st("warn")))

    def copyable(self) -> Copyable | None:
        """The openssl s_client command for the endpoint under the cursor."""
        node = self.query_one("#certs-tree", PlainTree).cursor_node
        while node is not None and not (isinstance(node.data, str) and node.data.startswith("host:")):
            node = node.parent
        if node is None:
            return None
        host = node.data.split(":", 1)[1]
        info = self._tls_endpoints(self.data).get(host)
        if info:
            reps = [r for r in endpoint_reproducers(info["ep"], info["image"]) if r.label.startswith("openssl")]
            if reps:
                return reps[0]
        name, _, port = host.partition(":")
        return Copyable(f"openssl s_client {host}", shlex.join(
            ["openssl", "s_client", "-connect", f"{name}:{port or 443}", "-servername", name, "-showcerts"]) + " </dev/null")
