"""Request bodies of the API's write endpoints under random input: a 4xx problem that names the bad field, never a 5xx.

tests/api/test_schema.py runs schemathesis over every operation with its ``not_a_server_error``
check only: it finds 5xx answers, but does not look at what a refusal says. Here each body is a
valid one with one field made invalid (the wrong type, out of range, too long, not one of the
choices, unknown), and the answer must be a 422 ``application/problem+json`` whose ``errors`` name
that field (``body.change.status``); a rule broken on a known line is refused with that line; and
any JSON at all is answered without a 5xx.

The API runs in the session's event loop (tests/api/conftest.py); Hypothesis drives a blocking
client from a thread, so that the loop goes on serving it.
"""

from __future__ import annotations

import asyncio
import copy
import string
from dataclasses import dataclass
from typing import Any

import httpx
from hypothesis import given
from hypothesis import strategies as st

from secmon.auth import Role
from secmon.bench.fuzz.cases import BrokenRule, broken_sigma_case
from tests.api.conftest import Api
from tests.fuzz.drawing import cases, examples

PROBLEM = "application/problem+json"

not_text = (
    st.integers()
    | st.booleans()
    | st.lists(st.integers(), max_size=2)
    | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
)
not_a_list = st.text(max_size=5) | st.integers() | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)


def one_of_but(choices: list[str]) -> st.SearchStrategy[Any]:
    """Anything but one of ``choices``: other text, or no text at all."""
    return st.text(max_size=20).filter(lambda value: value not in choices) | not_text


def list_of_text(most: int) -> st.SearchStrategy[Any]:
    """What a list of at most ``most`` strings must not be: no list, too long, or holding something else."""
    too_long = st.lists(st.text(max_size=3), min_size=most + 1, max_size=most + 3)
    not_only_text = st.lists(st.text(max_size=3), max_size=3).flatmap(
        lambda texts: st.integers(0, len(texts)).map(lambda at: [*texts[:at], 7, *texts[at:]])
    )
    return not_a_list | too_long | not_only_text


def longer_than(most: int) -> st.SearchStrategy[str]:
    return st.text(string.ascii_letters, min_size=most + 1, max_size=most + 20)


TRIAGE_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "status": one_of_but(["open", "acknowledged", "closed"]),
    "resolution": one_of_but(["true_positive", "false_positive", "benign"]),
    "assignee": not_text | longer_than(200),
    "add_tags": list_of_text(50),
    "remove_tags": list_of_text(50),
    "note": not_text | longer_than(10_000),
}


@dataclass(frozen=True)
class Endpoint:
    """A write endpoint, a valid body for it, and what can be wrong with each of its fields."""

    method: str
    path: str  # {alert_id} and {rule_id} are filled in
    valid: dict[str, Any]
    fields: dict[str, st.SearchStrategy[Any]]  # dotted field → its invalid values
    forbids_unknown: bool = True  # the model refuses fields it does not know


ENDPOINTS = [
    Endpoint("PATCH", "/alerts/{alert_id}", {"assignee": "dana", "add_tags": ["fuzz"]}, TRIAGE_FIELDS),
    Endpoint(
        "POST",
        "/alerts/bulk",
        {"ids": ["{alert_id}"], "change": {"add_tags": ["fuzz"]}},
        {
            "ids": st.just([]) | st.lists(st.just("x"), min_size=1001, max_size=1001) | list_of_text(1000),
            **{f"change.{name}": values for name, values in TRIAGE_FIELDS.items()},
        },
    ),
    Endpoint(
        "POST",
        "/apikeys",
        {"role": "analyst", "name": "fuzz", "agencies": ["a"]},
        {
            "role": one_of_but(["admin", "analyst", "rule_author", "agency"]),
            "name": st.just("") | not_text | longer_than(200),
            "agencies": list_of_text(100) | st.just([""]) | longer_than(200).map(lambda name: [name]),
        },
    ),
    Endpoint(
        "PUT",
        "/rules/{rule_id}/enabled",
        {"enabled": True},
        {
            # pydantic takes "yes", "off", 1 and the like for a boolean: anything else is refused.
            "enabled": st.text(string.ascii_letters, min_size=6, max_size=12)
            | st.integers(2, 10**6)
            | st.none()
            | st.lists(st.booleans(), max_size=2)
        },
        forbids_unknown=False,
    ),
]


@dataclass(frozen=True)
class BadBody:
    endpoint: Endpoint
    field: str  # dotted
    body: dict[str, Any]


@st.composite
def bad_bodies(draw: st.DrawFn) -> BadBody:
    """A valid body of one endpoint with one field made invalid (or one unknown field added)."""
    endpoint = draw(st.sampled_from(ENDPOINTS))
    names = list(endpoint.fields) + (["(unknown)"] if endpoint.forbids_unknown else [])
    field = draw(st.sampled_from(names))
    if field == "(unknown)":
        known = {name.split(".")[0] for name in endpoint.valid}
        field = draw(st.text(string.ascii_lowercase + "_", min_size=1, max_size=12).filter(lambda n: n not in known))
        value = draw(st.integers() | st.text(max_size=5))
    else:
        value = draw(endpoint.fields[field])
    body = copy.deepcopy(endpoint.valid)
    *parents, last = field.split(".")
    target = body
    for parent in parents:
        target = target[parent]
    target[last] = value
    return BadBody(endpoint, field, body)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)


def fill(path: str, ids: dict[str, str]) -> str:
    return path.format(**ids)


async def test_a_bad_field_is_refused_with_a_problem_that_names_it(api: Api) -> None:
    secret = await api.key(Role.ADMIN, name="fuzz-api")
    [alert_id] = await api.store_alerts("fuzz-agency")
    ids = {"alert_id": alert_id, "rule_id": api.rule.id}

    client = httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {secret}"}, timeout=30)

    @examples(80)
    @given(bad=bad_bodies())
    def refused(bad: BadBody) -> None:
        answer = client.request(bad.endpoint.method, fill(bad.endpoint.path, ids), json=_filled(bad.body, ids))
        assert answer.status_code == 422, (bad, answer.text)
        assert answer.headers["content-type"] == PROBLEM
        problem = answer.json()
        where = f"body.{bad.field}"
        assert any(e["where"] == where or e["where"].startswith(f"{where}.") for e in problem["errors"]), problem
        assert where in problem["detail"]

    with client:
        await asyncio.to_thread(refused)


async def test_any_json_body_is_answered_without_a_server_error(api: Api) -> None:
    secret = await api.key(Role.ADMIN, name="fuzz-api-any")
    [alert_id] = await api.store_alerts("fuzz-agency")
    ids = {"alert_id": alert_id, "rule_id": api.rule.id}
    writes = [(e.method, e.path) for e in ENDPOINTS] + [("POST", "/rules"), ("POST", "/rules/test")]

    client = httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {secret}"}, timeout=30)

    @examples(80)
    @given(endpoint=st.sampled_from(writes), body=json_values | st.binary(max_size=50))
    def answered(endpoint: tuple[str, str], body: Any) -> None:
        method, path = endpoint
        if isinstance(body, bytes):  # not JSON, or not UTF-8, though it says it is JSON
            answer = client.request(method, fill(path, ids), content=body, headers={"content-type": "application/json"})
        else:
            answer = client.request(method, fill(path, ids), json=body)
        assert answer.status_code < 500, answer.text
        if answer.status_code >= 400:
            assert answer.headers["content-type"] == PROBLEM
            assert answer.json()["detail"]

    with client:
        await asyncio.to_thread(answered)


async def test_a_rule_upload_broken_on_a_line_is_refused_with_that_line(api: Api) -> None:
    secret = await api.key(Role.RULE_AUTHOR, name="fuzz-rules")

    client = httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {secret}"}, timeout=30)

    @examples(30)
    @given(broken=cases(broken_sigma_case))
    def refused(broken: BrokenRule) -> None:
        answer = client.post("/rules", content=broken.text.encode(), headers={"content-type": "application/yaml"})
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == PROBLEM
        errors = answer.json()["errors"]
        assert any(e["line"] == broken.line and broken.said in e["problem"] for e in errors), (broken.what, errors)

    with client:
        await asyncio.to_thread(refused)


def _filled(value: Any, ids: dict[str, str]) -> Any:
    """``value`` with the ``{alert_id}`` placeholders of valid bodies replaced."""
    if isinstance(value, str):
        return value.format(**ids) if value.startswith("{") and value.endswith("}") and value[1:-1] in ids else value
    if isinstance(value, list):
        return [_filled(item, ids) for item in value]
    if isinstance(value, dict):
        return {key: _filled(item, ids) for key, item in value.items()}
    return value
