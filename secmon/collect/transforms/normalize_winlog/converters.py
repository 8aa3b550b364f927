"""What a mapping file's ``as:`` names: how one event_data value becomes ECS fields.

A *converter* turns the value into the one value its ECS field gets (None: write nothing). A
*mapper* writes several fields under the path it is given (``user`` becomes ``user.name`` and
``user.domain``). A mapping file names them by the keys of :data:`CONVERTERS` and :data:`MAPPERS`;
a new one is a function here and one line in its table.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from typing import Any, Final

from secmon.collect.transforms.normalize_winlog.event_data import EventDataValue
from secmon.collect.transforms.normalize_winlog.values import NONE, FieldPath, put, to_int
from secmon.events import Event, get_field

Rule = Callable[[Event, EventDataValue], None]  # writes the ECS fields that one event_data field implies
Convert = Callable[[EventDataValue], Any]  # one event_data value to one ECS value, or None for "write nothing"
Mapper = Callable[[Event, FieldPath, EventDataValue], None]  # writes several ECS fields under a path

# ---------------------------------------------------------------------------------------------
# Converters of one value


def boolean(value: EventDataValue) -> bool | None:
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def ip(value: EventDataValue) -> str | None:
    """Only a valid address: anything else would make Elasticsearch reject the whole event."""
    if not isinstance(value, str) or value in NONE:
        return None
    address = value.strip().split("%", 1)[0]  # Elasticsearch's ip type takes no IPv6 zone
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return None
    return address


def listed(value: EventDataValue) -> list[str] | None:
    if isinstance(value, list):
        return value
    return [value] if value not in NONE else None


def initiated_direction(value: EventDataValue) -> str | None:
    """Sysmon's Initiated: the host opened the connection (egress) or accepted it (ingress)."""
    initiated = boolean(value)
    return None if initiated is None else "egress" if initiated else "ingress"


def ip_version(value: EventDataValue) -> str | None:
    is_ipv6 = boolean(value)
    return None if is_ipv6 is None else "ipv6" if is_ipv6 else "ipv4"


_WFP_DIRECTIONS: Final = {"%%14592": "ingress", "%%14593": "egress"}


def wfp_direction(value: EventDataValue) -> str | None:
    return _WFP_DIRECTIONS.get(value) if isinstance(value, str) else None


_LOGON_TYPES: Final = {
    2: "Interactive",
    3: "Network",
    4: "Batch",
    5: "Service",
    7: "Unlock",
    8: "NetworkCleartext",
    9: "NewCredentials",
    10: "RemoteInteractive",
    11: "CachedInteractive",
    12: "CachedRemoteInteractive",
    13: "CachedUnlock",
}


def logon_type(value: EventDataValue) -> str | None:
    number = to_int(value)
    return _LOGON_TYPES.get(number) if number is not None else None


CONVERTERS: Final[Mapping[str, Convert]] = {
    "integer": to_int,
    "boolean": boolean,
    "ip": ip,
    "list": listed,
    "initiated_direction": initiated_direction,
    "ip_version": ip_version,
    "wfp_direction": wfp_direction,
    "logon_type": logon_type,
}

# ---------------------------------------------------------------------------------------------
# Mappers that write several fields


def domain_user(event: Event, path: FieldPath, value: EventDataValue) -> None:
    """``DOMAIN\\user`` into <path>.domain and <path>.name."""
    if not isinstance(value, str) or value in NONE:
        return
    domain, _, name = value.rpartition("\\")
    put(event, (*path, "name"), name)
    if domain:
        put(event, (*path, "domain"), domain)


def hashes(event: Event, path: FieldPath, value: EventDataValue) -> None:
    """Sysmon's ``SHA1=..,MD5=..,SHA256=..,IMPHASH=..`` into <path>.hash.* and <path>.pe.imphash."""
    if not isinstance(value, str):
        return
    for pair in value.split(","):
        algorithm, _, digest = pair.partition("=")
        algorithm = algorithm.strip().lower()
        if not digest or algorithm not in ("md5", "sha1", "sha256", "sha512", "imphash"):
            continue
        put(event, (*path, "pe", "imphash") if algorithm == "imphash" else (*path, "hash", algorithm), digest.strip())


def _registry(event: Event, path: FieldPath, value: EventDataValue, *, value_event: bool) -> None:
    """A registry path into registry.path, .hive and .key (and .value when it names a value)."""
    if not isinstance(value, str) or value in NONE:
        return
    put(event, (*path, "path"), value)
    hive, _, key = value.partition("\\")
    put(event, (*path, "hive"), hive)
    if value_event:
        key, _, name = key.rpartition("\\")
        put(event, (*path, "value"), name)
    if key:
        put(event, (*path, "key"), key)


def registry_key(event: Event, path: FieldPath, value: EventDataValue) -> None:
    _registry(event, path, value, value_event=False)


def registry_value(event: Event, path: FieldPath, value: EventDataValue) -> None:
    _registry(event, path, value, value_event=True)


MAPPERS: Final[Mapping[str, Mapper]] = {
    "domain_user": domain_user,
    "hashes": hashes,
    "registry_key": registry_key,
    "registry_value": registry_value,
}

# The mapper that writes no path of its own: the fields of the block it reads say where they go.
POWERSHELL_CONTEXT: Final = "powershell_context"
HostContext = Mapping[str, tuple[Rule, str]]  # key of the block -> (its rule, the field it writes)


def powershell_context(context: HostContext) -> Rule:
    """The rule reading the ``Key=Value`` lines PowerShell writes about its host into ECS fields.

    Keys are looked up without spaces, in lower case: classic events write ``HostApplication=...``,
    4103 writes ``Host Application = ...``. The first line naming a field wins. The command line
    comes last and may span lines, so it takes the rest of the block: a script cannot forge the
    fields before it.
    """

    def rule(event: Event, value: EventDataValue) -> None:
        if not isinstance(value, str):
            return
        lines = value.splitlines()
        for index, line in enumerate(lines):
            key, equals, text = line.partition("=")
            if not equals:
                continue
            name = key.replace(" ", "").replace("\t", "").lower()
            if name == "commandline":
                text = "\n".join([text, *lines[index + 1 :]])
            context_rule = context.get(name)
            if context_rule is not None and get_field(event, context_rule[1]) is None:
                context_rule[0](event, text.strip())
            if name == "commandline":
                return

    return rule
