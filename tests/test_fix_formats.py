"""Format-preserving edits: JSON spans, tomlkit TOML, systemd drop-ins and env files, YAML line edits,
the file's encoding, and secrets masked in every diff."""

from __future__ import annotations

import json
import tomllib

import pytest

from regtui.config import _yaml
from regtui.fixes import EnvFile, JsonDoc, PlanRefused, TomlDoc, UnitFile, YamlDoc, decode, encode, unified_diff


# -- JSON -----------------------------------------------------------------------------------

@pytest.mark.parametrize("unit", ["  ", "    ", "\t"])
def test_json_new_members_take_the_files_indentation(unit: str) -> None:
    """New keys and nested objects are indented like their siblings (2, 4 spaces or a tab)."""
    doc = JsonDoc("{\n" + unit + '"debug": true\n}\n')
    doc.set(("proxies", "no-proxy"), "localhost")
    assert doc.text() == ("{\n" + unit + '"debug": true,\n' + unit + '"proxies": {\n' + unit * 2 +
                          '"no-proxy": "localhost"\n' + unit + "}\n}\n")


def test_json_one_line_file_stays_one_line() -> None:
    """A one-line object gets its new member on the same line; key order kept."""
    doc = JsonDoc('{"b": 1, "a": [1, 2]}')
    doc.set(("c",), "x")
    doc.append(("a",), 3)
    assert doc.text() == '{"b": 1, "a": [1, 2, 3], "c": "x"}'


def test_json_delete_first_middle_last_and_only() -> None:
    """Deleting members removes their separators and lines, leaving valid JSON with the same layout."""
    doc = JsonDoc('{\n  "a": 1,\n  "b": 2,\n  "c": {"x": 1}\n}\n')
    doc.delete(("b",))
    assert doc.text() == '{\n  "a": 1,\n  "c": {"x": 1}\n}\n'
    doc.delete(("c", "x"))
    doc.delete(("a",))
    assert doc.text() == '{\n  "c": {}\n}\n'


def test_json_refuses_duplicate_keys_and_invalid_documents() -> None:
    """A key written twice is not guessed at; invalid JSON is not edited."""
    with pytest.raises(PlanRefused):
        JsonDoc('{"a": 1, "a": 2}').delete(("a",))
    with pytest.raises(PlanRefused):
        JsonDoc('{"a": ')


def test_encoding_bom_crlf_and_missing_final_newline_survive() -> None:
    """UTF-8 BOM, CRLF line ends and the absence of a final newline are kept."""
    data = b'\xef\xbb\xbf{\r\n  "debug": true\r\n}'
    text, enc = decode(data)
    doc = JsonDoc(text)
    doc.set(("log-level",), "warn")
    out = encode(doc.text(), enc)
    assert out == b'\xef\xbb\xbf{\r\n  "debug": true,\r\n  "log-level": "warn"\r\n}'
    assert json.loads(out.decode("utf-8-sig")) == {"debug": True, "log-level": "warn"}


def test_utf16_file_round_trips() -> None:
    """UTF-16 with BOM (dockerd accepts it) is written back as UTF-16 with the same BOM."""
    data = '{"debug": true}\n'.encode("utf-16")
    text, enc = decode(data)
    assert encode(text, enc) == data


# -- TOML -----------------------------------------------------------------------------------

def test_toml_comments_quoting_and_order_survive() -> None:
    """Editing one key keeps comments, literal strings, inline comments and key order elsewhere."""
    src = ("# header comment\nversion = 2\n\n[a]\n  path = 'C:\\raw'  # literal\n  list = [ 1,2 ]\n\n"
           "[b]\n  x = \"1\"\n")
    doc = TomlDoc(src)
    doc.set(("b", "x"), "2")
    doc.set(("a", "new"), True)
    assert doc.text() == src.replace('x = "1"', 'x = "2"').replace("  list = [ 1,2 ]\n", "  list = [ 1,2 ]\n  new = true\n")


def test_toml_table_delete_keeps_other_comments() -> None:
    """A deleted table takes its attached comment; the next table's comment stays."""
    src = ('server = "https://r"\n\n# mirror A\n[host."https://a"]\n  x = 1\n  [host."https://a".header]\n    k = "v"\n\n'
           '# mirror B\n[host."https://b"]\n  y = 2\n')
    doc = TomlDoc(src)
    doc.delete(("host", "https://a"))
    assert doc.text() == 'server = "https://r"\n\n# mirror B\n[host."https://b"]\n  y = 2\n'


def test_toml_rename_table_with_subtables_and_key_in_place() -> None:
    """Renaming a table rewrites its header lines (sub-tables too); renaming a key keeps its line."""
    src = '[host."https://a"]\n  skipverify = true  # note\n[host."https://a".header]\n  k = "v"\n'
    doc = TomlDoc(src)
    doc.rename_table(("host", "https://a"), "http://a")
    doc.rename_key(("host", "http://a", "skipverify"), "skip_verify")
    assert doc.text() == '[host."http://a"]\n  skip_verify = true  # note\n[host."http://a".header]\n  k = "v"\n'


def test_toml_refuses_what_it_cannot_do_exactly() -> None:
    """Renaming onto an existing key is refused; invalid TOML is not edited."""
    with pytest.raises(PlanRefused):
        TomlDoc("a = 1\nb = 2\n").rename_key(("a",), "b")
    with pytest.raises(PlanRefused):
        TomlDoc("[a\n")


# -- systemd --------------------------------------------------------------------------------

def test_dropin_created_with_service_section() -> None:
    """An absent drop-in becomes [Service] plus the Environment line, with % and quotes escaped."""
    unit = UnitFile("", "/etc/systemd/system/docker.service.d/http-proxy.conf")
    unit.set_env("NO_PROXY", 'a,%b,"c"')
    assert unit.text() == '[Service]\nEnvironment="NO_PROXY=a,%%b,\\"c\\""\n'
    assert unit.environment() == {"NO_PROXY": 'a,%b,"c"'}


def test_dropin_edits_one_assignment_and_keeps_the_rest() -> None:
    """Changing one variable of a multi-assignment line rewrites that line only; other sections stay."""
    src = "[Unit]\nAfter=network.target\n\n[Service]\n# proxies\nEnvironment=HTTP_PROXY=http://a:1 NO_PROXY=x\nLimitNOFILE=1\n"
    unit = UnitFile(src, "/etc/systemd/system/d.service.d/p.conf")
    unit.set_env("NO_PROXY", "x,y")
    unit.set_env("HTTPS_PROXY", "http://a:1")
    assert unit.text() == ("[Unit]\nAfter=network.target\n\n[Service]\n# proxies\n"
                           'Environment="HTTP_PROXY=http://a:1" "NO_PROXY=x,y"\nLimitNOFILE=1\n'
                           'Environment="HTTPS_PROXY=http://a:1"\n')
    unit.remove_env("HTTPS_PROXY")
    assert "HTTPS_PROXY" not in unit.text()


def test_dropin_exec_start_reset_and_quoting() -> None:
    """ExecStart is reset and rewritten; arguments with spaces are quoted and % doubled."""
    unit = UnitFile("[Service]\nExecStart=/usr/bin/dockerd --old\n", "/etc/systemd/system/docker.service.d/o.conf")
    unit.set_exec_start(["/usr/bin/dockerd", "--label", "team=a b", "--x=50%"])
    assert unit.text() == "[Service]\nExecStart=\nExecStart=/usr/bin/dockerd --label 'team=a b' --x=50%%\n"
    assert unit.exec_start() == ["/usr/bin/dockerd", "--label", "team=a b", "--x=50%"]


def test_dropin_continuation_lines_are_refused() -> None:
    """A backslash-continued Environment= line is not guessed at."""
    unit = UnitFile('[Service]\nEnvironment="A=1" \\\n  "B=2"\n', "/x.conf")
    with pytest.raises(PlanRefused):
        unit.set_env("A", "3")


def test_env_file_keeps_export_and_quotes_when_needed() -> None:
    """KEY=VALUE files: the export prefix stays; values with spaces are quoted."""
    env = EnvFile("# k3s\nexport HTTP_PROXY=http://a:1\n", "/etc/systemd/system/k3s.service.env")
    env.set("HTTP_PROXY", "http://b:2")
    env.set("NO_PROXY", "a b")
    assert env.text() == "# k3s\nexport HTTP_PROXY=http://b:2\nNO_PROXY='a b'\n"
    assert env.values() == {"HTTP_PROXY": "http://b:2", "NO_PROXY": "a b"}


# -- YAML -----------------------------------------------------------------------------------

def test_yaml_set_creates_mappings_with_the_files_indentation() -> None:
    """New nested keys use the file's step (4 here); quoted keys stay quoted; comments stay."""
    src = '# node\nconfigs:\n    "reg:5000":  # the lab\n        tls:\n            insecure_skip_verify: true\n'
    doc = YamlDoc(src)
    doc.set(("configs", "reg:5000", "tls", "ca_file"), "/ca.crt")
    doc.set(("configs", "other.example", "tls", "ca_file"), "/o.crt")
    assert doc.text() == (src + '            ca_file: "/ca.crt"\n    other.example:\n        tls:\n'
                                '            ca_file: "/o.crt"\n')
    assert _yaml.loads(doc.text()).data["configs"]["reg:5000"]["tls"]["ca_file"] == "/ca.crt"


def test_yaml_value_comment_kept_and_flow_style_refused() -> None:
    """Replacing a scalar keeps its trailing comment; flow sequences are not rewritten."""
    doc = YamlDoc("a:\n  b: 1  # keep\n")
    doc.set(("a", "b"), 2)
    assert doc.text() == "a:\n  b: 2  # keep\n"
    with pytest.raises(PlanRefused):
        YamlDoc('m:\n  e: ["a", "b"]\n').remove_item(("m", "e"), 0)


def test_yaml_sequence_at_parent_indent() -> None:
    """A block sequence written at its key's indentation is edited in place."""
    doc = YamlDoc("mirrors:\n  x:\n    endpoint:\n    - https://a\n    - https://b\n  y: {}\n")
    doc.remove_item(("mirrors", "x", "endpoint"), 0)
    assert doc.text() == "mirrors:\n  x:\n    endpoint:\n    - https://b\n  y: {}\n"


# -- previews -------------------------------------------------------------------------------

def test_diff_masks_secrets_in_every_format() -> None:
    """JSON auth, TOML password, unquoted YAML password, env *_PASSWORD and URL credentials never show."""
    before = b"x\n"
    after = (b'"auth": "c2VjcmV0MQ=="\npassword = "secret2"\n    password: secret3\nREG_PASSWORD=secret4\n'
             b'Environment="HTTPS_PROXY=http://u:secret5@p:3128"\nidentity_token: secret6\n')
    diff = unified_diff("/f", before, after)
    for n in range(1, 7):
        assert f"secret{n}" not in diff and "c2VjcmV0MQ" not in diff
    assert diff.count("***") >= 6


def test_diff_of_created_and_deleted_files() -> None:
    """A new file diffs from /dev/null, a deleted one to /dev/null."""
    assert unified_diff("/a", None, b"x\n").startswith("--- /dev/null\n+++ b/a\n")
    assert "+++ /dev/null" in unified_diff("/a", b"x\n", None)


def test_toml_move_keeps_blocks_whole() -> None:
    """Reordering [host] tables moves each with its sub-tables and comments."""
    doc = TomlDoc('[host."a"]\n  x = 1\n\n# b\n[host."b"]\n  y = 2\n')
    doc.move_table_after(("host", "a"), ("host", "b"))
    assert list(tomllib.loads(doc.text())["host"]) == ["b", "a"]
    assert doc.text() == '# b\n[host."b"]\n  y = 2\n\n[host."a"]\n  x = 1\n'
