"""Windows event log records to ECS events, from .evtx files and from Winlogbeat.

Both inputs end in one shape, so a Sigma rule matches an event the same way whichever way it came:

* ``winlog.*`` keeps the record as Windows wrote it, under Winlogbeat's field names:
  ``winlog.event_id`` and ``event.code`` are strings, and ``winlog.event_data.<Name>`` holds every
  EventData field under its own name, with its value as a string, which is what Sigma compares.
* ECS fields (``process.*``, ``user.*``, ``source.*``, ``registry.*``...) are derived from
  ``winlog.event_data`` by one function for both inputs, from one mapping file per event provider
  (``mappings/*.yml``, read by :mod:`.mappings`).

How event data values are kept:

* Scalars become strings: numbers in decimal, booleans as ``"true"``/``"false"`` (as the XML
  has them). Nulls are dropped; empty strings and Windows' ``"-"`` (for "none") are kept, but
  never copied to an ECS field.
* A field with several values (an array substitution) stays a list of strings: Elasticsearch
  and Sigma both treat a list as matching when one of its values matches.
* Data elements without a Name are ``param1``, ``param2``... in document order, as Winlogbeat
  names them. Sigma rules call them ``Data`` (the XML element's name), so their values are also
  kept as the list ``Data``, whenever the event data has ``paramN`` fields and no ``Data``.
* UserData (which some events carry instead of EventData) is ``winlog.user_data``, Winlogbeat's
  shape: ``{"xml_name": <its element>, <field>: <value>...}``. Sigma rules do not say which block
  a field is in, so when a record has no EventData the UserData fields are also copied to
  ``winlog.event_data``.

Transforms never raise on bad input: a record without a System element, an event id or a time
is still an event, tagged with :func:`~secmon.events.mark_parse_failure`.

The modules, in the order an event goes through them: :mod:`.record` (the entry points and the
System element), :mod:`.event_data` (EventData and UserData), :mod:`.ecs` (the ECS fields, by
:mod:`.mappings` and :mod:`.converters`), with :mod:`.values` for single values.
"""

from __future__ import annotations

from secmon.collect.transforms.normalize_winlog.ecs import map_event_data
from secmon.collect.transforms.normalize_winlog.event_data import EventData, EventDataValue
from secmon.collect.transforms.normalize_winlog.mappings import MappingError
from secmon.collect.transforms.normalize_winlog.record import dataset_of, normalize_evtx, normalize_winlogbeat

__all__ = [
    "EventData",
    "EventDataValue",
    "MappingError",
    "dataset_of",
    "map_event_data",
    "normalize_evtx",
    "normalize_winlogbeat",
]
