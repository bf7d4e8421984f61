"""The TOML line scanner: keys of every shape our configs use map to their lines."""

from __future__ import annotations

from headwater.validation._toml_lines import LineMap

TEXT = '''\
# comment = not a key
[workspace]
region = "eu" # trailing comment
"quoted key" = 'x'

[destinations."my.dest"]
connector = "saas"
labels = [
  "a",  # comment inside
  "b=c",
]
notes = """
fake = "not a key"
"""
nested = { inner = 1, deeper = { leaf = true } }
site.url = "https://x"
when = 1979-05-27 07:32:00Z

[[log.extra]]
n = 1

[[log.extra]]
n = 2
'''


def test_keys_map_to_their_lines() -> None:
    lines = LineMap.scan(TEXT)
    assert lines.line_of(("workspace",)) == 2
    assert lines.line_of(("workspace", "region")) == 3
    assert lines.line_of(("workspace", "quoted key")) == 4
    assert lines.line_of(("destinations",)) == 6
    assert lines.line_of(("destinations", "my.dest", "connector")) == 7
    assert lines.line_of(("destinations", "my.dest", "labels")) == 8
    assert lines.line_of(("destinations", "my.dest", "labels", 1)) == 10
    assert lines.line_of(("destinations", "my.dest", "notes")) == 12
    assert lines.line_of(("destinations", "my.dest", "fake")) == 6  # the parent table
    assert lines.line_of(("destinations", "my.dest", "nested", "deeper", "leaf")) == 15
    assert lines.line_of(("destinations", "my.dest", "site", "url")) == 16
    assert lines.line_of(("destinations", "my.dest", "when")) == 17
    assert lines.line_of(("log", "extra", 0, "n")) == 20
    assert lines.line_of(("log", "extra", 1, "n")) == 23


def test_unknown_keys_fall_back_to_the_nearest_parent_or_none() -> None:
    lines = LineMap.scan(TEXT)
    assert lines.line_of(("workspace", "missing")) == 2
    assert lines.line_of(("server", "listen")) is None
