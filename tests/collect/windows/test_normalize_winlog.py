"""normalize_evtx and normalize_winlogbeat on every record of EVTX-ATTACK-SAMPLES, and on odd input."""

from __future__ import annotations

import copy
import ipaddress
import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from secmon.collect.sources.evtx import EvtxRecord, read_evtx
from secmon.collect.transforms.normalize_winlog import normalize_evtx, normalize_winlogbeat
from secmon.events import PARSE_FAILURE_TAG, Event, get_field

DATASET = Path(__file__).resolve().parents[3].parent / "shared" / "datasets" / "evtx"
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
ETW_TRACE = "etw_rpc_zerologon.evtx"  # its 415 records come from an ETW trace and name no channel

Normalized = list[tuple[EvtxRecord, Event]]


@pytest.fixture(scope="module")
def normalized() -> Normalized:
    """Every record of the dataset with its normalized event."""
    return [
        (record, normalize_evtx(record.event, path=str(record.path)))
        for path in sorted(DATASET.rglob("*.evtx"))
        for record in read_evtx(path)
    ]


def find(normalized: Normalized, file_name: str, event_record_id: int) -> Event:
    """The event of the record with System/EventRecordID ``event_record_id`` in ``file_name``."""
    for record, event in normalized:
        if record.path.name == file_name and record.event["System"]["EventRecordID"] == event_record_id:
            return event
    raise LookupError(f"{file_name} has no record {event_record_id}")


# ---------------------------------------------------------------------------------------------
# Every record


def winlogbeat_text(value: Any) -> str:
    """A value as the event XML (and so Winlogbeat) writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def test_every_record_normalizes_with_its_identity(normalized: Normalized) -> None:
    assert len(normalized) == 3978
    for record, event in normalized:
        system = record.event["System"]
        assert ISO_UTC.fullmatch(event["@timestamp"]), record
        assert event["@timestamp"] == system["TimeCreated"]["#attributes"]["SystemTime"]
        assert event["event"]["code"] == event["winlog"]["event_id"]
        assert event["event"]["code"].isdigit()
        assert event["winlog"]["record_id"] == system["EventRecordID"]
        assert event["host"]["name"] == event["winlog"]["computer_name"] == system["Computer"]
        assert event["event"]["kind"] == "event"
        assert event["event"]["module"] == "windows"
        assert event["log"]["file"]["path"] == str(record.path)
        assert "message" not in event
        assert "tags" not in event, event.get("error")
        if record.path.name == ETW_TRACE:
            assert system["Channel"] is None
            assert "channel" not in event["winlog"]
            assert event["event"]["dataset"] == "windows.rpc"
        else:
            assert event["winlog"]["channel"] == system["Channel"]


def test_event_original_is_the_record_as_compact_json(normalized: Normalized) -> None:
    for record, event in normalized:
        original = event["event"]["original"]
        assert orjson.loads(original) == {"Event": record.event}
        assert "\n" not in original


def test_datasets_per_channel(normalized: Normalized) -> None:
    datasets = {(event["winlog"].get("channel"), event["event"]["dataset"]) for _, event in normalized}
    assert datasets == {
        ("Security", "windows.security"),
        ("System", "windows.system"),
        ("Application", "windows.application"),
        ("Microsoft-Windows-Sysmon/Operational", "windows.sysmon_operational"),
        ("Windows PowerShell", "windows.powershell"),
        ("Microsoft-Windows-PowerShell/Operational", "windows.powershell_operational"),
        ("Microsoft-Windows-Windows Defender/Operational", "windows.windows_defender_operational"),
        ("Microsoft-Windows-Bits-Client/Operational", "windows.bits_client_operational"),
        ("Microsoft-Windows-WinRM/Operational", "windows.winrm_operational"),
        (
            "Microsoft-Windows-RemoteDesktopServices-RdpCoreTS/Operational",
            "windows.remotedesktopservices_rdpcorets_operational",
        ),
        (
            "Microsoft-Windows-TerminalServices-RemoteConnectionManager/Operational",
            "windows.terminalservices_remoteconnectionmanager_operational",
        ),
        (
            "Microsoft-Windows-Application-Experience/Program-Compatibility-Assistant",
            "windows.application_experience_program_compatibility_assistant",
        ),
        (None, "windows.rpc"),
    }


def test_every_named_event_data_field_is_kept_under_its_name_as_a_string(normalized: Normalized) -> None:
    kept = 0
    for record, event in normalized:
        event_data = event["winlog"].get("event_data", {})
        for value in event_data.values():
            assert isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))
        source = record.event.get("EventData")
        if not isinstance(source, dict):
            continue
        for name, value in source.items():
            if name in ("Data", "#attributes") or value is None:
                continue
            assert event_data[name] == winlogbeat_text(value), (record.path.name, name)
            kept += 1
    assert kept == 37_516  # the named fields of the dataset, all checked


def test_ecs_fields_have_the_types_elasticsearch_maps(normalized: Normalized) -> None:
    for _, event in normalized:
        for field in ("source.ip", "destination.ip"):
            if (address := get_field(event, field)) is not None:
                ipaddress.ip_address(address)
        for field in ("source.port", "destination.port", "process.pid", "process.parent.pid", "winlog.record_id"):
            value = get_field(event, field)
            assert value is None or type(value) is int, (field, value)
        for field in ("event.category", "event.type"):
            value = get_field(event, field)
            assert value is None or (isinstance(value, list) and value), field


# ---------------------------------------------------------------------------------------------
# Golden records


def test_sysmon_process_creation(normalized: Normalized) -> None:
    event = find(normalized, "DE_timestomp_and_dll_sideloading_and_RunPersist.evtx", 6577)
    assert event["event"]["code"] == "1"
    assert event["event"]["dataset"] == "windows.sysmon_operational"
    assert event["event"]["category"] == ["process"]
    assert event["event"]["type"] == ["start"]
    assert event["process"]["executable"] == "C:\\Users\\IEUser\\Downloads\\Flash_update.exe"
    assert event["process"]["name"] == "Flash_update.exe"
    assert event["process"]["command_line"] == '"C:\\Users\\IEUser\\Downloads\\Flash_update.exe" '
    assert event["process"]["pid"] == 2680
    assert event["process"]["entity_id"] == "365ABB72-7C01-5CC4-0000-00102B3E0C00"
    assert event["process"]["working_directory"] == "C:\\Users\\IEUser\\Downloads\\"
    assert event["process"]["parent"] == {
        "entity_id": "365ABB72-7ACC-5CC4-0000-0010B2470300",
        "pid": 2772,
        "executable": "C:\\Windows\\explorer.exe",
        "command_line": "C:\\Windows\\Explorer.EXE",
        "name": "explorer.exe",
    }
    assert event["process"]["hash"] == {
        "sha1": "B4E581F173F782A2F1DA5D29C95946EE500EB2D0",
        "md5": "42893ADBC36605EC79B5BD610759947E",
        "sha256": "1A061C74619DE6AF8C02CBA0FA00754BDD9E3515C0E08CAD6350C7ADFC8CDD5B",
    }
    assert event["process"]["pe"]["imphash"] == "40BEC1A4A3BCB7D3089B5E1532386613"
    assert event["user"] == {"name": "IEUser", "domain": "IEWIN7"}
    assert event["rule"]["name"] == "technique_id=T1036,technique_name=Masquerading"
    data = event["winlog"]["event_data"]
    assert data["Image"] == event["process"]["executable"]
    assert data["ParentImage"] == "C:\\Windows\\explorer.exe"
    assert data["ProcessId"] == "2680"
    assert data["TerminalSessionId"] == "1"
    assert event["winlog"]["provider_guid"] == "{5770385F-C22A-43E0-BF4C-06F5698FFBD9}"
    assert event["winlog"]["process"] == {"pid": 1912, "thread": {"id": 996}}
    assert event["winlog"]["user"] == {"identifier": "S-1-5-18"}


def test_sysmon_network_connection(normalized: Normalized) -> None:
    event = find(normalized, "panache_sysmon_vs_EDRTestingScript.evtx", 4907)
    assert event["event"]["category"] == ["network"]
    assert event["source"] == {"ip": "10.0.2.15", "port": 49826, "domain": "MSEDGEWIN10.home"}
    assert event["destination"] == {"ip": "151.101.0.133", "port": 443}  # DestinationHostname is empty
    assert event["network"] == {"transport": "tcp", "direction": "egress", "type": "ipv4", "protocol": "https"}
    assert event["winlog"]["event_data"]["Initiated"] == "true"
    assert event["winlog"]["event_data"]["DestinationPort"] == "443"


def test_sysmon_registry_value_set(normalized: Normalized) -> None:
    event = find(normalized, "DE_timestomp_and_dll_sideloading_and_RunPersist.evtx", 6593)
    path = (
        "HKU\\S-1-5-21-3583694148-1414552638-2922671848-1000\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\360v"
    )
    assert event["event"]["code"] == "13"
    assert event["registry"] == {
        "path": path,
        "hive": "HKU",
        "key": "S-1-5-21-3583694148-1414552638-2922671848-1000\\Software\\Microsoft\\Windows\\CurrentVersion\\Run",
        "value": "360v",
        "data": {"strings": ["C:\\Users\\IEUser\\AppData\\Roaming\\svchost.exe"]},
    }
    assert event["event"]["type"] == ["change"]


def test_sysmon_file_creation(normalized: Normalized) -> None:
    event = find(normalized, "DE_timestomp_and_dll_sideloading_and_RunPersist.evtx", 6575)
    assert event["event"]["code"] == "11"
    assert event["file"] == {
        "path": "C:\\Users\\IEUser\\Downloads\\Flash_update.exe",
        "name": "Flash_update.exe",
        "directory": "C:\\Users\\IEUser\\Downloads",
        "extension": "exe",
    }
    assert event["event"]["category"] == ["file"]
    assert event["event"]["type"] == ["creation"]


def test_security_logon(normalized: Normalized) -> None:
    event = find(normalized, "DE_RDP_Tunneling_4624.evtx", 5315)
    data = event["winlog"]["event_data"]
    assert data["LogonType"] == "10"
    assert data["IpAddress"] == "127.0.0.1"
    assert event["winlog"]["logon"] == {"id": "0x45120", "type": "RemoteInteractive"}
    # The user of a logon is the account logging on, not the service reporting it.
    assert event["user"] == {"id": "S-1-5-21-3583694148-1414552638-2922671848-1000", "name": "IEUser", "domain": "PC02"}
    assert event["source"] == {"ip": "127.0.0.1", "port": 49164, "domain": "PC02"}
    assert event["process"] == {
        "pid": 0x658,
        "executable": "C:\\Windows\\System32\\winlogon.exe",
        "name": "winlogon.exe",
    }
    assert event["event"]["outcome"] == "success"
    assert event["event"]["category"] == ["authentication"]
    assert event["event"]["type"] == ["start"]


def test_security_logon_without_address_has_no_source_ip(normalized: Normalized) -> None:
    event = find(normalized, "DE_RDP_Tunneling_4624.evtx", 5278)
    assert event["winlog"]["event_data"]["IpAddress"] == "-"
    assert "source" not in event  # "-" and "" are Windows' "none"


def test_security_process_creation_ids_are_hex(normalized: Normalized) -> None:
    event = find(normalized, "LM_4624_mimikatz_sekurlsa_pth_source_machine.evtx", 432905)
    assert event["winlog"]["event_data"]["NewProcessId"] == "0x440"
    assert event["process"] == {
        "pid": 0x440,
        "executable": "C:\\Windows\\System32\\cmd.exe",
        "name": "cmd.exe",
        "parent": {"pid": 0x448},
    }
    assert event["user"] == {"id": "S-1-5-18", "name": "PC01$", "domain": "EXAMPLE"}


def test_security_group_membership_change(normalized: Normalized) -> None:
    event = find(normalized, "Network_Service_Guest_added_to_admins_4732.evtx", 191029)
    assert event["group"] == {"name": "Administrators", "domain": "Builtin", "id": "S-1-5-32-544"}
    assert event["user"]["name"] == "IEUser"
    assert event["user"]["target"] == {"id": "S-1-5-21-3461203602-4096304019-2269080069-501"}
    assert event["event"]["type"] == ["group", "change"]


def test_powershell_script_block(normalized: Normalized) -> None:
    event = find(normalized, "Powershell_4104_MiniDumpWriteDump_Lsass.evtx", 971)
    script = event["winlog"]["event_data"]["ScriptBlockText"]
    assert script.startswith("function Memory($path)\r\n{")
    assert "MiniDumpWriteDump" in script
    assert event["powershell"]["file"] == {
        "script_block_text": script,
        "script_block_id": "27f08bda-c330-419f-b83b-eb5c0f699930",
    }
    assert event["powershell"]["sequence"] == 1
    assert event["powershell"]["total"] == 1
    assert event["file"]["path"] == "C:\\Users\\Public\\lsass_wer_ps.ps1"
    assert event["event"]["dataset"] == "windows.powershell_operational"


def test_classic_powershell_host_block(normalized: Normalized) -> None:
    event = find(normalized, "exec_emotet_ps_800_get-item.evtx", 789)
    data = event["winlog"]["event_data"]
    assert data["param2"].startswith("\tDetailSequence=1")
    assert data["Data"] == [data["param1"], data["param2"], data["param3"]]
    assert event["process"]["command_line"] == "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"
    assert event["process"]["title"] == "ConsoleHost"
    assert event["powershell"]["engine"] == {"version": "5.1.19041.1"}
    assert event["powershell"]["command"]["value"] == data["param1"]  # the command line runs to the block's end
    assert event["event"]["sequence"] == 27
    assert event["user"] == {"name": "Clippy", "domain": "DESKTOP-RIPCLIP"}
    assert event["event"]["dataset"] == "windows.powershell"


def test_system_log_cleared_user_data(normalized: Normalized) -> None:
    event = find(normalized, "DE_104_system_log_cleared.evtx", 27736)
    assert event["event"]["code"] == "104"
    assert event["winlog"]["provider_name"] == "Microsoft-Windows-Eventlog"
    fields = {"SubjectUserName": "user01", "SubjectDomainName": "EXAMPLE", "Channel": "System"}
    # BackupPath is null in the record, and the xmlns attributes are not data.
    assert event["winlog"]["user_data"] == {"xml_name": "LogFileCleared", **fields}
    assert event["winlog"]["event_data"] == fields  # Sigma rules name UserData fields like EventData ones
    assert event["user"] == {"name": "user01", "domain": "EXAMPLE"}
    assert event["event"]["dataset"] == "windows.system"


def test_rdp_user_data(normalized: Normalized) -> None:
    event = find(normalized, "DE_RDP_Tunneling_TerminalServices-RemoteConnectionManagerOperational_1149.evtx", 6)
    assert event["winlog"]["user_data"] == {
        "xml_name": "EventXML",
        "Param1": "administrator",
        "Param2": "ie11win7",
        "Param3": "10.0.2.16",
    }


def test_unnamed_data_and_binary(normalized: Normalized) -> None:
    event = find(normalized, "MSSQL_multiple_failed_logon_EventID_18456.evtx", 13026)
    values = ["sa", " Reason: Password did not match that for the login provided.", " [CLIENT: 10.0.2.17]"]
    assert event["winlog"]["event_data"] == {
        "param1": values[0],
        "param2": values[1],
        "param3": values[2],
        "Data": values,
        "Binary": "184800000E0000000C0000004D0053004500440047004500570049004E0031003000"
        "0000070000006D00610073007400650072000000",
    }
    assert event["event"]["code"] == "18456"  # the EventID element carries Qualifiers
    assert event["event"]["outcome"] == "failure"  # keywords 0x90000000000000: classic, audit failure


def test_event_data_element_attributes_are_not_fields(normalized: Normalized) -> None:
    event = find(normalized, "LsassSilentProcessExit_process_exit_monitor_3001_lsass.evtx", 32887)
    assert event["event"]["code"] == "3001"
    assert event["winlog"]["event_data"]["param1"] == "C:\\Windows\\System32\\lsass.exe"
    assert "Name" not in event["winlog"]["event_data"]
    assert "#attributes" not in event["winlog"]["event_data"]


def test_processing_error_data(normalized: Normalized) -> None:
    event = find(normalized, "LM_winrm_target_wrmlogs_91_wsmanShellStarted_poorLog.evtx", 508)
    assert event["winlog"]["processing_error_data"]["ErrorCode"] == "15005"
    assert event["winlog"]["processing_error_data"]["DataItemName"] == "shellId"
    assert "event_data" not in event["winlog"]


# ---------------------------------------------------------------------------------------------
# Winlogbeat: the same record as Winlogbeat ships it normalizes to the same fields

KEYWORD_NAMES = {0x10000000000000: "Audit Failure", 0x20000000000000: "Audit Success", 0x80000000000000: "Classic"}


def winlogbeat_doc(record: dict[str, Any]) -> dict[str, Any]:
    """The document Winlogbeat ships for this evtx ``Event``, built here without normalize_winlog's help."""
    system = record["System"]
    event_id = system["EventID"]["#text"] if isinstance(system["EventID"], dict) else system["EventID"]
    provider = system["Provider"]["#attributes"]
    execution = (system.get("Execution") or {}).get("#attributes", {})
    keywords = int(system["Keywords"], 16)
    winlog: dict[str, Any] = {
        "event_id": event_id,  # Winlogbeat 7 ships an integer
        "provider_name": provider["Name"],
        "record_id": str(system["EventRecordID"]),  # and 8 a string
        "computer_name": system["Computer"],
        "keywords": [name for bit, name in KEYWORD_NAMES.items() if keywords & bit],
        "opcode": "Info",
        "api": "wineventlog",
        "logon": {"id": "0xstale"},
    }
    if system.get("Channel"):
        winlog["channel"] = system["Channel"]
    if "Guid" in provider:
        winlog["provider_guid"] = "{" + provider["Guid"].strip("{}") + "}"
    if execution:
        winlog["process"] = {"pid": execution["ProcessID"], "thread": {"id": execution["ThreadID"]}}
    event_data: dict[str, str] = {}
    source = record.get("EventData")
    if isinstance(source, dict):
        for name, value in source.items():
            if name == "Data":
                for number, text in enumerate(value["#text"] if isinstance(value["#text"], list) else [value["#text"]]):
                    event_data[f"param{number + 1}"] = text
            elif name != "#attributes" and value is not None:
                event_data[name] = winlogbeat_text(value)
    if event_data:
        winlog["event_data"] = event_data
    user_data = record.get("UserData")
    if isinstance(user_data, dict):
        ((element, body),) = user_data.items()
        fields = {k: winlogbeat_text(v) for k, v in body.items() if k != "#attributes" and v is not None}
        winlog["user_data"] = {"xml_name": element, **fields}
    system_time = system["TimeCreated"]["#attributes"]["SystemTime"]
    return {
        "@timestamp": system_time[:23] + "Z",  # Winlogbeat's milliseconds
        "message": "The rendered message.",
        "agent": {"type": "winlogbeat", "version": "8.15.0"},
        "ecs": {"version": "8.0.0"},
        "host": {"name": system["Computer"].split(".")[0].upper(), "os": {"family": "windows"}},
        "event": {"code": str(event_id), "kind": "event", "created": "2024-05-01T10:00:00.000Z", "action": "Logon"},
        "log": {"level": "information"},
        "winlog": winlog,
        # What a Winlogbeat module derived its own way: normalize_winlogbeat derives these again.
        "user": {"name": "stale"},
        "process": {"name": "stale", "args": ["stale"]},
        "related": {"user": ["stale"]},
    }


def test_a_winlogbeat_document_gives_the_same_fields_as_the_record(normalized: Normalized) -> None:
    derived = {"@timestamp", "event", "winlog", "log", "host"}
    for record, from_evtx in normalized:
        doc = winlogbeat_doc(record.event)
        from_winlogbeat = normalize_winlogbeat(doc)

        assert from_winlogbeat["@timestamp"] == doc["@timestamp"]
        for field in ("event_id", "channel", "record_id", "computer_name", "provider_name", "process"):
            assert from_winlogbeat["winlog"].get(field) == from_evtx["winlog"].get(field), field
        assert from_winlogbeat["winlog"].get("event_data") == from_evtx["winlog"].get("event_data")
        assert from_winlogbeat["winlog"].get("user_data") == from_evtx["winlog"].get("user_data")
        assert from_winlogbeat["winlog"].get("logon") == from_evtx["winlog"].get("logon")
        for field in ("code", "dataset", "provider", "category", "type", "outcome", "sequence"):
            assert from_winlogbeat["event"].get(field) == from_evtx["event"].get(field), field
        # Every ECS field derived from the event data is the same; nothing stale remains.
        ecs_groups = {key for key in from_evtx if key not in derived}
        assert {key for key in from_winlogbeat if key not in derived} == ecs_groups | {"message", "agent", "ecs"}
        for group in ecs_groups:
            assert from_winlogbeat[group] == from_evtx[group], (record.path.name, group)

        # What only Winlogbeat knew is kept.
        assert from_winlogbeat["message"] == "The rendered message."
        assert from_winlogbeat["event"]["created"] == "2024-05-01T10:00:00.000Z"
        assert from_winlogbeat["winlog"]["api"] == "wineventlog"
        assert from_winlogbeat["event"]["original"] == orjson.dumps(doc).decode()


def test_winlogbeat_host_fields_describe_the_event_host_only_when_they_name_it() -> None:
    doc = {
        "@timestamp": "2024-05-01T10:00:00.000Z",
        "host": {"name": "wef-collector", "os": {"family": "windows"}},
        "winlog": {"channel": "ForwardedEvents", "event_id": 4624, "computer_name": "dc1.example.org"},
    }
    forwarded = normalize_winlogbeat(doc)
    assert forwarded["host"] == {"name": "dc1.example.org"}
    assert forwarded["event"]["dataset"] == "windows.forwarded"

    doc["host"] = {"name": "DC1", "os": {"family": "windows"}}
    local = normalize_winlogbeat(doc)
    assert local["host"] == {"name": "dc1.example.org", "os": {"family": "windows"}}


def test_winlogbeat_types_are_normalized() -> None:
    event = normalize_winlogbeat(
        {
            "@timestamp": "2024-05-01T12:00:00+02:00",
            "event": {"code": "4625"},
            "winlog": {
                "channel": "Security",
                "provider_name": "Microsoft-Windows-Security-Auditing",
                "record_id": "77",
                "event_data": {"LogonType": 3, "IpAddress": "::ffff:10.0.0.9", "TargetUserName": "bob", "Gone": None},
            },
        }
    )
    assert event["@timestamp"] == "2024-05-01T10:00:00Z"
    assert event["event"]["code"] == event["winlog"]["event_id"] == "4625"  # taken from event.code
    assert event["winlog"]["record_id"] == 77
    assert event["winlog"]["event_data"] == {"LogonType": "3", "IpAddress": "::ffff:10.0.0.9", "TargetUserName": "bob"}
    assert event["source"] == {"ip": "::ffff:10.0.0.9"}
    assert event["user"] == {"name": "bob"}
    assert event["winlog"]["logon"] == {"type": "Network"}
    assert "tags" not in event


# ---------------------------------------------------------------------------------------------
# Odd input


def minimal_record(**extra: Any) -> dict[str, Any]:
    return {
        "System": {
            "Provider": {"#attributes": {"Name": "Test-Provider"}},
            "EventID": 7,
            "TimeCreated": {"#attributes": {"SystemTime": "2024-05-01T10:00:00.123456Z"}},
            "EventRecordID": 1,
            "Channel": "Test/Operational",
            "Computer": "host1",
        },
        **extra,
    }


@pytest.mark.parametrize(
    ("event_data", "expected"),
    [
        (None, None),
        ("bare text", {"param1": "bare text", "Data": ["bare text"]}),
        ({"#text": "only text"}, {"param1": "only text", "Data": ["only text"]}),
        ({"Data": {"#attributes": {"Name": "One"}, "#text": "x"}}, {"One": "x"}),
        (
            {"Data": [{"#attributes": {"Name": "Image"}, "#text": "C:\\a.exe"}, {"#text": "loose"}, "bare", None, 5]},
            # The null fourth Data element keeps its number, so param4 is the fifth.
            {"Image": "C:\\a.exe", "param1": "loose", "param2": "bare", "param4": "5", "Data": ["loose", "bare", "5"]},
        ),
        ({"Data": {"#attributes": {"Name": "Multi"}, "#text": ["a", 1, True, None]}}, {"Multi": ["a", "1", "true"]}),
        ([{"#attributes": {"Name": "A"}, "#text": "1"}, {"#attributes": {"Name": "B"}, "#text": None}], {"A": "1"}),
        (
            {"Blob": {"nested": {"x": 1}}, "Flag": False, "Ratio": 0.5, "Empty": "", "Gone": None, "": "nameless"},
            {"Blob": '{"nested":{"x":1}}', "Flag": "false", "Ratio": "0.5", "Empty": ""},
        ),
    ],
    ids=["null", "string", "text-only", "one-named", "mixed-list", "array-value", "list", "odd-values"],
)
def test_event_data_shapes(event_data: Any, expected: dict[str, Any] | None) -> None:
    event = normalize_evtx(minimal_record(EventData=event_data))
    assert event["winlog"].get("event_data") == expected
    assert "tags" not in event
    assert event["event"]["dataset"] == "windows.test_operational"


@pytest.mark.parametrize(
    ("system_time", "expected"),
    [
        ("2024-05-01T10:00:00.123456Z", "2024-05-01T10:00:00.123456Z"),
        ("2024-05-01 10:00:00.123456 UTC", "2024-05-01T10:00:00.123456Z"),  # older evtx releases
        ("2024-05-01T12:00:00+02:00", "2024-05-01T10:00:00Z"),
    ],
)
def test_timestamps_become_iso_utc(system_time: str, expected: str) -> None:
    record = minimal_record()
    record["System"]["TimeCreated"]["#attributes"]["SystemTime"] = system_time
    assert normalize_evtx(record)["@timestamp"] == expected


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({}, "the record has no System element"),
        ({"System": "junk"}, "the record has no System element"),
        ({"System": {"Channel": "Security", "Computer": "h"}}, "the record has no EventID"),
        ({"System": {"EventID": {"#text": "x"}}}, "the record has no EventID"),
        ({"System": {"EventID": 4624, "TimeCreated": {"#attributes": {"SystemTime": "yesterday"}}}}, "TimeCreated"),
        ({"System": {"EventID": 4624, "TimeCreated": None}}, "the record has no valid TimeCreated"),
    ],
)
def test_unusable_records_are_events_marked_as_parse_failures(record: dict[str, Any], reason: str) -> None:
    event = normalize_evtx(record)
    assert PARSE_FAILURE_TAG in event["tags"]
    assert reason in event["error"]["message"]
    assert orjson.loads(event["event"]["original"]) == {"Event": record}


def test_a_record_missing_a_channel_keeps_what_it_has() -> None:
    event = normalize_evtx({"System": {"Channel": "Security", "Computer": "h"}})
    assert event["winlog"] == {"channel": "Security", "computer_name": "h"}
    assert event["event"]["dataset"] == "windows.security"


@pytest.mark.parametrize("doc", ["junk", [], {}, {"winlog": "junk"}, {"winlog": {}}])
def test_unusable_winlogbeat_documents_are_marked(doc: Any) -> None:
    event = normalize_winlogbeat(doc)
    assert PARSE_FAILURE_TAG in event["tags"]


ODD_VALUES: list[Any] = [None, 7, -1, True, "x", "", [], {}, [None], {"#text": None}, {"#attributes": 3}, 2**70, 0.5]


def mutate(node: Any, rng: random.Random) -> Any:
    """``node`` with some of its values replaced by odd ones."""
    if isinstance(node, dict):
        return {
            key: rng.choice(ODD_VALUES) if rng.random() < 0.15 else mutate(value, rng) for key, value in node.items()
        }
    if isinstance(node, list):
        return [mutate(item, rng) for item in node]
    return node


def test_mutated_records_never_raise(normalized: Normalized) -> None:
    rng = random.Random(20240501)
    outcomes: Counter[bool] = Counter()
    for record, _ in rng.sample(normalized, 400):
        for _ in range(3):
            odd = mutate(copy.deepcopy(record.event), rng)
            event = normalize_evtx(odd)
            assert event["event"]["module"] == "windows"
            outcomes[PARSE_FAILURE_TAG in event.get("tags", [])] += 1
            odd_doc = mutate(winlogbeat_doc(record.event), rng)
            assert normalize_winlogbeat(odd_doc)["event"]["module"] == "windows"
    assert outcomes[True] and outcomes[False]  # the mutations did break some records and not others
