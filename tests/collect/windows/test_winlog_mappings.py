"""The mapping files of normalize_winlog: the shipped ones load and ship, a broken one names its file and line."""

from __future__ import annotations

import fnmatch
import textwrap
import tomllib
from pathlib import Path

import pytest

from secmon.collect.transforms.normalize_winlog import MappingError, map_event_data
from secmon.collect.transforms.normalize_winlog.mappings import MAPPINGS_DIRECTORY, load_mappings
from secmon.events import Event

PYPROJECT = Path(__file__).resolve().parents[3] / "pyproject.toml"
PACKAGE = "secmon.collect.transforms.normalize_winlog"


def test_every_shipped_mapping_file_is_package_data() -> None:
    package_data = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["setuptools"]["package-data"]
    patterns = package_data[PACKAGE]
    shipped = sorted(path.relative_to(MAPPINGS_DIRECTORY.parent).as_posix() for path in MAPPINGS_DIRECTORY.iterdir())
    assert shipped
    for name in shipped:
        assert any(fnmatch.fnmatch(name, pattern) for pattern in patterns), name


def test_the_shipped_files_map_every_provider_they_name() -> None:
    providers = load_mappings()
    assert set(providers) == {
        "Microsoft-Windows-Sysmon",
        "Microsoft-Windows-Security-Auditing",
        "Microsoft-Windows-Eventlog",
        "Microsoft-Windows-PowerShell",
        "PowerShell",
        "Service Control Manager",
    }
    # fields_from: the event log service names users as Security events do.
    assert (
        providers["Microsoft-Windows-Eventlog"].fields.keys()
        == providers["Microsoft-Windows-Security-Auditing"].fields.keys()
    )


@pytest.mark.parametrize(
    ("event_type", "expected"),
    [("CreateKey", ["creation"]), ("DeleteValue", ["deletion"]), ("RenameKey", ["change"]), (None, ["change"])],
)
def test_sysmon_registry_events_take_their_type_from_event_type(event_type: str | None, expected: list[str]) -> None:
    event: Event = {}
    event_data = {"TargetObject": "HKLM\\System\\Key"} | ({"EventType": event_type} if event_type else {})
    map_event_data(event, "Microsoft-Windows-Sysmon", "12", event_data)
    assert event["event"] == {"category": ["registry"], "type": expected}
    assert event["registry"] == {"path": "HKLM\\System\\Key", "hive": "HKLM", "key": "System\\Key"}


# Each broken file marks the line its error must name with "# <-".
BROKEN = {
    "yaml syntax": (
        "not a valid mapping file",
        """
        provider: [unclosed
        fields: {}  # <-
    """,
    ),
    "a key twice": (
        "'Image' is written twice",
        """
        provider: Example
        fields:
          Image: process.executable
          Image: file.path  # <-
    """,
    ),
    "not a mapping": (
        "a mapping file is a mapping",
        """
        - provider: Example  # <-
    """,
    ),
    "no provider": (
        "'provider' must name the provider",
        """
        fields: {}  # <-
    """,
    ),
    "unknown key": (
        "unknown key 'feilds'",
        """
        provider: Example
        feilds:  # <-
          Image: process.executable
    """,
    ),
    "not an ECS name": (
        "'Process.Executable' is not an ECS field name",
        """
        provider: Example
        fields:
          CommandLine: process.command_line
          Image: Process.Executable  # <-
    """,
    ),
    "unknown converter": (
        "'as' must be one of",
        """
        provider: Example
        fields:
          ProcessId:
            to: process.pid
            as: int  # <-
    """,
    ),
    "no target": (
        "'to' must be the ECS field to write",
        """
        provider: Example
        fields:
          ProcessId: {as: integer}  # <-
    """,
    ),
    "null provider-wide": (
        "null (not mapped) only overrides a provider field",
        """
        provider: Example
        fields:
          Image: null  # <-
    """,
    ),
    "host context with a target": (
        "takes no 'to'",
        """
        provider: Example
        fields:
          ContextInfo: {to: powershell, as: powershell_context}  # <-
    """,
    ),
    "no host context": (
        "needs a host_context table",
        """
        provider: Example
        fields:
          ContextInfo: {as: powershell_context}  # <-
    """,
    ),
    "an id in two entries": (
        "event id 1 is already in entry 1",
        """
        provider: Example
        events:
          - ids: [1]
            category: [process]
            type: [start]
          - ids:
              - 2
              - 1  # <-
            category: [process]
            type: [end]
    """,
    ),
    "an id as text": (
        "'4624' is not an event id",
        """
        provider: Example
        events:
          - ids: ['4624']  # <-
            category: [iam]
            type: [admin]
    """,
    ),
    "not an ECS category": (
        "'proces' is not an ECS event.category value",
        """
        provider: Example
        events:
          - ids: [1]
            category:
              - proces  # <-
            type: [start]
    """,
    ),
    "category without type": (
        "'category' and 'type' go together",
        """
        provider: Example
        events:
          - ids: [1]  # <-
            category: [process]
    """,
    ),
    "an entry that says nothing": (
        "says what its events are",
        """
        provider: Example
        events:
          - ids: [1]  # <-
    """,
    ),
    "type_from with two types": (
        "'type_from' needs 'type' to be the one type",
        """
        provider: Example
        events:
          - ids: [1]
            category: [file]
            type: [creation, change]  # <-
            type_from: {field: EventType, values: {Delete: deletion}}
    """,
    ),
    "null overriding nothing": (
        "User: null leaves unmapped a field",
        """
        provider: Example
        fields:
          Image: process.executable
        events:
          - ids: [1]
            fields:
              User: null  # <-
    """,
    ),
    "fields_from an unknown provider": (
        "fields_from names 'Nobody'",
        """
        provider: Example
        fields_from: Nobody  # <-
    """,
    ),
}


@pytest.mark.parametrize(("reason", "text"), BROKEN.values(), ids=BROKEN.keys())
def test_a_broken_mapping_file_names_its_file_and_line(tmp_path: Path, reason: str, text: str) -> None:
    text = textwrap.dedent(text).lstrip("\n")
    line = next(number for number, content in enumerate(text.splitlines(), 1) if content.endswith("# <-"))
    path = tmp_path / "example.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MappingError) as raised:
        load_mappings(tmp_path)
    assert reason in raised.value.reason
    assert (raised.value.path, raised.value.line) == (str(path), line)
    assert str(raised.value).endswith(f" in {path}:{line}")


def test_two_files_for_one_provider_are_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text("provider: Example\nfields: {Image: process.executable}\n", encoding="utf-8")
    (tmp_path / "b.yml").write_text("# the same provider again\nprovider: Example\n", encoding="utf-8")
    with pytest.raises(MappingError, match=r"provider 'Example' already has a\.yml in .*b\.yml:2$"):
        load_mappings(tmp_path)


def test_only_one_file_has_the_host_context(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / f"{name}.yml").write_text(f"provider: {name}\nhost_context: {{hostname: process.title}}\n")
    with pytest.raises(MappingError, match=r"host_context is already in a\.yml in .*b\.yml:2$"):
        load_mappings(tmp_path)


def test_a_valid_file_maps_through_aliases_and_converters(tmp_path: Path) -> None:
    (tmp_path / "example.yml").write_text(
        textwrap.dedent("""
            provider: Example
            fields:
              Pid: {to: process.pid, as: integer}
              User: {to: user, as: domain_user}
            events:
              - ids: [1, 2]
                category: [process]
                type: [start]
                fields: &own
                  Image: process.executable
              - ids: [3]
                fields: *own
        """),
        encoding="utf-8",
    )
    example = load_mappings(tmp_path)["Example"]
    event: Event = {}
    for name, value in {"Pid": "0x10", "User": "CORP\\ann", "Image": "C:\\x.exe"}.items():
        rule = example.events["3"].fields.get(name) or example.fields[name]
        assert rule is not None
        rule(event, value)
    assert event == {"process": {"pid": 16, "executable": "C:\\x.exe"}, "user": {"name": "ann", "domain": "CORP"}}
    assert example.events["1"] is example.events["2"]
    assert (example.events["2"].category, example.events["2"].types) == (("process",), ("start",))
