"""The pySigma processing pipeline that maps Sigma rules onto secmon's events.

Windows rules keep their EventData names under ``winlog.event_data.*`` (as secmon stores them,
secmon/collect/transforms/normalize_winlog/); the header fields map to ``winlog.*``. Linux, web and
network mappings are pySigma YAML pipelines in ``rules/pipelines/``, so a rule author can read
and extend them without touching code. Last, each logsource's event selection is added as a
condition, which is what makes a converted query (``secmon rules convert``) select the same
events the streaming matcher routes by logsource: the selection of the entry for exactly the rule's
logsource, never those of broader entries as well (see secmon.detection.logsource).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from sigma.exceptions import SigmaError
from sigma.processing.conditions import (
    IncludeFieldCondition,
    LogsourceCondition,
    RuleProcessingCondition,
)
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import (
    AddConditionTransformation,
    AddFieldnamePrefixTransformation,
    FieldMappingTransformation,
    ValueListPlaceholderTransformation,
)

from secmon.config import SHIPPED_RULES_DIR
from secmon.detection.logsource import ExactLogsourceCondition, LogsourceMap
from secmon.errors import RuleError

RULES_DIR = SHIPPED_RULES_DIR
WINDOWS_HEADER_FIELDS = {
    "EventID": "winlog.event_id",
    "Channel": "winlog.channel",
    "Provider_Name": "winlog.provider_name",
    "Computer": "winlog.computer_name",
    "EventRecordID": "winlog.record_id",
}


def logsource_item_id(key: tuple[str | None, str | None, str | None]) -> str:
    """The processing item id that adds a logsource's selection (``was_processed_by`` tells support)."""
    return "secmon_logsource:" + "/".join(part or "-" for part in key)


def build_pipeline(
    logsources: LogsourceMap,
    pipeline_files: Sequence[Path] = (),
    placeholders: Mapping[str, Sequence[str]] | None = None,
) -> ProcessingPipeline:
    """secmon's pipeline: placeholders, field names, then logsource selections."""
    items: list[ProcessingItem] = []
    if placeholders:
        items.append(ProcessingItem(ValueListPlaceholderTransformation(), identifier="secmon_placeholders"))
    items += windows_field_names()
    pipeline = ProcessingPipeline(
        name="secmon", priority=20, items=items, vars={k: list(v) for k, v in (placeholders or {}).items()}
    )
    for path in pipeline_files:
        try:
            pipeline += ProcessingPipeline.from_yaml(path.read_text(encoding="utf-8"))
        except (OSError, SigmaError, ValueError, TypeError, KeyError) as exc:
            raise RuleError(f"invalid processing pipeline: {exc}", path=str(path)) from exc
    selections = [
        ProcessingItem(
            AddConditionTransformation(selection.as_conditions()),  # type: ignore[arg-type]
            identifier=logsource_item_id(key),
            rule_conditions=[ExactLogsourceCondition(product=key[0], category=key[1], service=key[2])],
        )
        for key, selection in logsources.selections.items()
    ]
    return pipeline + ProcessingPipeline(name="secmon logsources", priority=90, items=selections)


def default_pipeline_files(rules_dir: Path = RULES_DIR) -> list[Path]:
    """secmon's own pySigma pipelines, ``rules/pipelines/*.yml``."""
    return sorted((rules_dir / "pipelines").glob("*.yml"))


def windows_field_names() -> list[ProcessingItem]:
    """Windows rules' field names as secmon stores them (header fields to ``winlog.*``, the rest EventData)."""

    def windows() -> list[RuleProcessingCondition]:  # a condition object belongs to one item
        return [LogsourceCondition(product="windows")]

    return [
        ProcessingItem(
            FieldMappingTransformation(dict(WINDOWS_HEADER_FIELDS)),  # type: ignore[arg-type]
            identifier="secmon_windows_header",
            rule_conditions=windows(),
        ),
        ProcessingItem(  # every other field (not dotted, as mapped ones are) is an EventData name
            AddFieldnamePrefixTransformation("winlog.event_data."),
            identifier="secmon_windows_event_data",
            field_name_conditions=[IncludeFieldCondition(fields=[r"\w+\..*"], mode="re")],
            field_name_condition_negation=True,
            rule_conditions=windows(),
        ),
    ]
