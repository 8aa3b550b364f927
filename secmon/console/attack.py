"""The ATT&CK Enterprise tactics in the matrix's order, read from Sigma's tactic tags.

Sigma's tag appendix names tactics ``attack.<name>`` with hyphens (older rules use underscores);
SigmaHQ's rules follow ATT&CK v18, which split Defense Evasion into Stealth and Defense
Impairment, so all three have a column. A tag this table does not know still gets a column,
after the known ones, named as tagged.
"""

from __future__ import annotations

from dataclasses import dataclass

TAG_PREFIX = "attack."


@dataclass(frozen=True, slots=True)
class Tactic:
    name: str
    id: str | None = None  # TA0006; None where the spec's appendix does not give one

    @property
    def url(self) -> str | None:
        return f"https://attack.mitre.org/tactics/{self.id}/" if self.id else None


TACTICS = {
    "reconnaissance": Tactic("Reconnaissance", "TA0043"),
    "resource-development": Tactic("Resource Development", "TA0042"),
    "initial-access": Tactic("Initial Access", "TA0001"),
    "execution": Tactic("Execution", "TA0002"),
    "persistence": Tactic("Persistence", "TA0003"),
    "privilege-escalation": Tactic("Privilege Escalation", "TA0004"),
    "defense-evasion": Tactic("Defense Evasion", "TA0005"),
    "stealth": Tactic("Stealth"),
    "defense-impairment": Tactic("Defense Impairment"),
    "credential-access": Tactic("Credential Access", "TA0006"),
    "discovery": Tactic("Discovery", "TA0007"),
    "lateral-movement": Tactic("Lateral Movement", "TA0008"),
    "collection": Tactic("Collection", "TA0009"),
    "command-and-control": Tactic("Command and Control", "TA0011"),
    "exfiltration": Tactic("Exfiltration", "TA0010"),
    "impact": Tactic("Impact", "TA0040"),
}
_ORDER = {name: position for position, name in enumerate(TACTICS)}


def tactic_of(tag: str) -> Tactic:
    """The tactic a tag such as ``attack.credential_access`` names."""
    name = _name(tag)
    return TACTICS.get(name) or Tactic(name.replace("-", " ").title())


def matrix_order(tag: str | None) -> tuple[int, str]:
    """A sort key putting tactic tags in the matrix's column order; untagged (None) last."""
    if tag is None:
        return (len(_ORDER) + 1, "")
    name = _name(tag)
    return (_ORDER.get(name, len(_ORDER)), name)


def _name(tag: str) -> str:
    return tag.removeprefix(TAG_PREFIX).replace("_", "-")
