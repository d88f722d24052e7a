"""Config panel: the files each runtime reads, whether they parsed, effective values and provenance."""

from __future__ import annotations

import shlex
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets.tree import TreeNode

from regtui.tui.data import Copyable, human_key, human_value, panel_findings
from regtui.tui.widgets.base import Panel, PlainTree, tree_nodes

__all__ = ["ConfigPanel"]

_MARK = {"ok": "✓", "missing": "-", "parse-error": "✗", "unreadable": "!", "ignored": "~"}
_MAX_VALUE = 200


def _short(v: Any) -> str:
    s = human_value(v)
    return s if len(s) <= _MAX_VALUE else s[: _MAX_VALUE - 1] + "…"


def _add_value(node: TreeNode[Any], key: Any, value: Any, suffix: Text | None = None) -> None:
    """``key: value``; a mapping becomes a node with one line per entry (never a Python dict on screen)."""
    if isinstance(value, dict) and value:
        label = Text(f"{human_key(key)}")
        if suffix is not None:
            label.append_text(suffix)
        child = node.add(label, expand=True)
        for k, v in value.items():
            _add_value(child, k, v)
        return
    line = Text(f"{human_key(key)}: {_short(value)}")
    if suffix is not None:
        line.append_text(suffix)
    node.add_leaf(line)


class ConfigPanel(Panel):
    """Runtimes -> files (status, kind, why ignored) -> values; effective values with provenance."""

    panel = "config"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._seen_runtimes: set[str] = set()
        """Runtimes shown before: new ones open expanded, known ones keep the user's folding."""

    def compose_body(self) -> ComposeResult:
        """A tree: runtime, then its files, effective values and ignored keys."""
        tree: PlainTree = PlainTree("host", id="config-tree", classes="panel-content")
        tree.show_root = False
        tree.guide_depth = 2
        yield tree

    def render_body(self, data: dict[str, Any], state: str) -> None:
        """Rebuild the tree, keeping expanded runtimes expanded."""
        tree = self.query_one("#config-tree", PlainTree)
        expanded = {str(n.data) for n in tree_nodes(tree.root) if n.is_expanded and n.data}
        first = not self._seen_runtimes
        tree.clear()
        sources = data.get("sources", [])
        summaries = data.get("runtime_config", {})
        names = list(dict.fromkeys(r["name"] for r in data.get("runtimes", [])))
        for name in names + sorted({s["runtime"] for s in sources} - set(names)):
            self._runtime(tree.root, name, data, [s for s in sources if s["runtime"] == name],
                          summaries.get(name, {}), expanded, first or name not in self._seen_runtimes)
            self._seen_runtimes.add(name)
        kubelet = data.get("kubelet")
        if kubelet:
            label = Text("kubelet", style=self.st("key"))
            label.append(f"  pulls through {kubelet.get('runtime') or '?'}", style=self.st("dim"))
            node = tree.root.add(label, data="kubelet", expand="kubelet" in expanded)
            for k, v in kubelet.items():
                _add_value(node, k, v)
        if not tree.root.children:
            msg = "reading configuration…" if state == "running" else "no container runtime detected under this root"
            tree.root.add_leaf(Text(msg, style=self.st("dim")))
        for err in data.get("errors", []):
            tree.root.add_leaf(Text(f"internal error: {err.splitlines()[0]}", style=self.st("bad")))

    def _runtime(self, root: TreeNode[Any], name: str, data: dict[str, Any], sources: list[dict[str, Any]],
                 summary: dict[str, Any], expanded: set[str], first: bool) -> None:
        bad = sum(1 for s in sources if s["status"] in ("parse-error", "unreadable"))
        label = Text(name, style=self.st("key"))
        label.append(f"  {len(sources)} file(s)", style=self.st("dim"))
        if bad:
            label.append(f"  {bad} broken", style=self.st("bad"))
        node = root.add(label, data=f"rt:{name}", expand=first or f"rt:{name}" in expanded)
        files = node.add(Text("files", style=self.st("key")), data=f"files:{name}", expand=first or f"files:{name}" in expanded)
        for s in sources:
            mark = _MARK.get(s["status"], "?")
            fl = Text(f"{mark} ", style=self.status_style(s["status"]))
            fl.append(s["path"])
            fl.append(f"  {s['kind']}", style=self.st("dim"))
            if s["status"] != "ok":
                fl.append(f"  {s['status']}", style=self.status_style(s["status"]))
            fnode = files.add(fl, data=f"file:{name}:{s['path']}", expand=f"file:{name}:{s['path']}" in expanded)
            if s.get("detail"):
                fnode.add_leaf(Text(_short(s["detail"]), style=self.status_style(s["status"])))
            for k, v in (s.get("values") or {}).items():
                _add_value(fnode, k, v)
            if not fnode.children:
                fnode.allow_expand = False
        if summary:
            eff = node.add(Text("effective values", style=self.st("key")), data=f"eff:{name}",
                           expand=first or f"eff:{name}" in expanded)
            for k, v in summary.items():
                if k.endswith("_source") or k.endswith("_reason"):
                    continue
                src = summary.get(f"{k}_source") or summary.get(f"{k}_reason")
                _add_value(eff, k, v, Text(f"  ← {src}", style=self.st("dim")) if src else None)
        ignored = [f for f in panel_findings(data, "config")
                   if f.get("runtime") in (name, None) and f["code"] in ("config.ignored-key", "config.unknown-key")]
        ignored_files = [s for s in sources if s["status"] == "ignored"]
        if ignored or ignored_files:
            ign = node.add(Text(f"ignored ({len(ignored) + len(ignored_files)})", style=self.st("warn")),
                           data=f"ign:{name}", expand=first or f"ign:{name}" in expanded)
            for f in ignored:
                ev = f.get("evidence") or {}
                where = f"{ev.get('file')}:{ev.get('line')}" if ev.get("file") and ev.get("line") else f["subject"]
                title = f["title"] if f["title"].startswith(str(where)) else f"{where}  {f['title']}"
                ign.add_leaf(Text(title, style=self.st("warn")))
            for s in ignored_files:
                ign.add_leaf(Text(f"{s['path']}  {s.get('detail') or 'ignored'}", style=self.st("warn")))

    def copyable(self) -> Copyable | None:
        """The file under the cursor: a command that shows it."""
        node = self.query_one("#config-tree", PlainTree).cursor_node
        if node is None or not isinstance(node.data, str) or not node.data.startswith("file:"):
            return None
        path = node.data.split(":", 2)[2]
        return Copyable(f"show {path}", shlex.join(["cat", path]))
