"""The one YAML reader of target files, fleet files and runbooks: positions, YAML 1.2
scalars, and syntax errors with their line."""

from textwrap import dedent

import pytest

from chaos.core.errors import ConfigError
from chaos.core.yamlfile import YamlError, parse, read

TEXT = dedent("""\
    name: radio
    answer: no
    at: 1:30
    mode: 010
    services:
      - {name: origin, port: 8000}
      - name: relay
        dc:
    """)


def test_plain_scalars_are_read_as_yaml_1_2_reads_them():
    data = parse(TEXT, "t.yaml").data
    assert data["answer"] == "no" and data["at"] == "1:30" and data["mode"] == 10
    assert data["services"][0] == {"name": "origin", "port": 8000}
    assert parse("a: 0o17\nb: 1e3\nc: true\nd: ~\n", "t").data == {"a": 15, "b": 1000.0, "c": True, "d": None}


def test_positions_name_a_scalar_value_a_container_key_and_skip_what_is_not_in_the_file():
    doc = parse(TEXT, "t.yaml")
    assert doc.position(("services", 0, "port")) == (6, 26)
    assert doc.position(("services",)) == (5, 1)
    assert doc.position(("services", 1)) == (7, 5)
    assert doc.position(("services", 1, "dc")) == (8, 5)         # blank value: its key
    assert doc.position(("services", 1, "kind")) == (7, 5)       # missing field: its mapping
    assert doc.position(("services", 9)) == (5, 1)
    assert doc.where(("name",)) == "t.yaml:1:7"


@pytest.mark.parametrize("text, line, says", [
    ("a: 1\nb: c: d\n", 2, "mapping values are not allowed"),
    ("a: 1\nb: 2\na: 3\n", 3, "found the key 'a' twice"),
    ("--- 1\n--- 2\n", 2, "not valid YAML"),
])
def test_a_syntax_error_is_a_config_error_with_its_line(text, line, says):
    with pytest.raises(YamlError) as e:
        parse(text, "t.yaml")
    assert isinstance(e.value, ConfigError) and e.value.line == line and says in str(e.value)
    assert str(e.value).startswith(f"t.yaml:{line}:")


def test_a_file_must_hold_a_mapping(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text("- a\n")
    with pytest.raises(ConfigError, match="must be a YAML mapping"):
        read(p, "a target description")
