from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import schemas
from producers.follow import FileFollower
from producers.queue_log import (
    AdapterError,
    QueueLogError,
    QueueLogFormatError,
    QueueLogOptions,
    default_prefix,
    load_options,
    normalise_agent,
    parse_line,
    translate_numbered,
    translate_queue_log,
)
from tawasul.infra.pseudonymise import Pseudonymiser, normalise

DATA = Path(__file__).resolve().parents[1] / "data" / "queue_log"
SAMPLE = DATA / "queue_log"
PS = Pseudonymiser(b"queue-log-test-key-0123456789")
LANGUAGES = {"customer-care-ar": "ar", "customer-care-en": "en"}

Result = dict[str, Any] | AdapterError


def sample_lines() -> list[str]:
    return SAMPLE.read_text(encoding="utf-8").splitlines()


def translate(lines: list[str] | None = None, **options: Any) -> list[tuple[int, Result]]:
    kwargs: dict[str, Any] = {"prefix": "pbx-main", "pseudonymiser": PS, "languages": LANGUAGES, "wrap_up_seconds": 30}
    kwargs.update(options)
    return list(translate_queue_log(sample_lines() if lines is None else lines, **kwargs))


def events_of(results: list[tuple[int, Result]]) -> list[dict[str, Any]]:
    return [r for _, r in results if isinstance(r, dict)]


def by_call(results: list[tuple[int, Result]]) -> dict[str, list[dict[str, Any]]]:
    calls: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events_of(results):
        calls[event["subject"]].append(event)
    return calls


# callid -> expected (type, data) per event, in order; agent events, RINGNOANSWER lines skipped.
EXPECTED_CALLS: list[tuple[str, list[tuple[str, dict[str, Any]]]]] = [
    (
        "1747109022.107",  # RINGNOANSWER on 1002 first, then 1001 answers; caller hangs up
        [
            ("call.offered", {"queue": "customer-care-ar", "language": "ar"}),
            ("call.answered", {"queue": "customer-care-ar", "agent": "agent-1001"}),
            ("call.ended", {"queue": "customer-care-ar", "agent": "agent-1001", "wrap_up_seconds": 30}),
        ],
    ),
    (
        "1747109226.114",  # COMPLETEAGENT
        [
            ("call.offered", {"queue": "customer-care-en", "language": "en"}),
            ("call.answered", {"queue": "customer-care-en", "agent": "agent-2001"}),
            ("call.ended", {"queue": "customer-care-en", "agent": "agent-2001", "wrap_up_seconds": 30}),
        ],
    ),
    (
        "1747109447.121",
        [("call.offered", {"queue": "customer-care-ar"}), ("call.abandoned", {"queue": "customer-care-ar"})],
    ),
    (
        "1747110470.133",
        [("call.offered", {"queue": "customer-care-en"}), ("call.abandoned", {"queue": "customer-care-en"})],
    ),
    (
        "1747111516.161",
        [("call.offered", {"queue": "customer-care-ar"}), ("call.abandoned", {"queue": "customer-care-ar"})],
    ),
    (
        "1747118233.275",
        [("call.offered", {"queue": "customer-care-ar"}), ("call.abandoned", {"queue": "customer-care-ar"})],
    ),
    (
        "1747109600.126",  # member Local/1005@from-queue/n
        [
            ("call.offered", {"queue": "customer-care-ar"}),
            ("call.answered", {"agent": "agent-1005"}),
            ("call.ended", {"agent": "agent-1005"}),
        ],
    ),
    (
        "1747109903.128",  # member Agent/1003
        [("call.offered", {}), ("call.answered", {"agent": "agent-1003"}), ("call.ended", {"agent": "agent-1003"})],
    ),
    (
        "1747112342.179",  # BLINDTRANSFER
        [("call.offered", {}), ("call.answered", {"agent": "agent-2001"}), ("call.ended", {"agent": "agent-2001"})],
    ),
    (
        "1747113014.196",  # ATTENDEDTRANSFER
        [("call.offered", {}), ("call.answered", {"agent": "agent-2002"}), ("call.ended", {"agent": "agent-2002"})],
    ),
    (
        "1747114528.227",  # TRANSFER
        [("call.offered", {}), ("call.answered", {"agent": "agent-1002"}), ("call.ended", {"agent": "agent-1002"})],
    ),
]


@pytest.mark.parametrize(("callid", "expected"), EXPECTED_CALLS, ids=[c for c, _ in EXPECTED_CALLS])
def test_sample_calls_translate_as_expected(callid: str, expected: list[tuple[str, dict[str, Any]]]) -> None:
    events = by_call(translate())[f"pbx-main-{callid}"]
    assert [e["type"] for e in events] == [t for t, _ in expected]
    for event, (_, data) in zip(events, expected, strict=True):
        assert data.items() <= event["data"].items()
        assert event["source"] == "/channels/pbx/pbx-main"


def test_malformed_lines_are_reported_with_line_number_and_reason() -> None:
    errors = {line_no: r.reason for line_no, r in translate() if isinstance(r, AdapterError)}
    assert sorted(errors) == [31, 52, 74, 95]
    assert "at least 5" in errors[31]
    assert "field 1 (epoch)" in errors[52]
    assert "field 6 (holdtime)" in errors[74] and "integer" in errors[74]
    assert "field 4 (agent)" in errors[95]


def test_lines_around_a_malformed_line_are_kept() -> None:
    numbers = [line_no for line_no, _ in translate()]
    assert {30, 31, 32} <= set(numbers) and {51, 52, 54} <= set(numbers)


def test_every_event_is_valid_per_the_contract() -> None:
    events = events_of(translate())
    assert events
    for event in events:
        parsed = schemas.parse_event(event)
        assert parsed.to_dict()["data"] == event["data"]
        assert event["time"].endswith("+04:00")


def test_totals_and_lifecycle_per_call() -> None:
    calls = by_call(translate())
    assert len(calls) == 34
    lifecycles = {tuple(e["type"] for e in events) for events in calls.values()}
    assert lifecycles == {
        ("call.offered", "call.abandoned"),
        ("call.offered", "call.answered", "call.ended"),
    }
    shapes = [tuple(e["type"] for e in events) for events in calls.values()]
    assert shapes.count(("call.offered", "call.abandoned")) == 9
    for events in calls.values():
        times = [e["time"] for e in events]
        assert times == sorted(times)


def test_agent_and_queue_events_are_skipped() -> None:
    lines = sample_lines()
    non_call = {i for i, line in enumerate(lines, 1) if line and line.split("|")[1:2] == ["NONE"]}
    skipped_kinds = {lines[i - 1].split("|")[4] for i in non_call}
    assert {"QUEUESTART", "ADDMEMBER", "AGENTLOGIN", "PAUSE", "UNPAUSE", "AGENTLOGOFF", "REMOVEMEMBER"} <= skipped_kinds
    produced = {line_no for line_no, _ in translate()}
    assert not produced & non_call
    ringnoanswer = {i for i, line in enumerate(lines, 1) if "|RINGNOANSWER|" in line}
    assert ringnoanswer and not produced & ringnoanswer


def test_time_is_dubai_rfc3339_and_subject_is_prefixed() -> None:
    first = events_of(translate())[0]
    assert first["time"] == "2025-05-13T08:03:43+04:00"  # epoch 1747109023
    assert first["subject"] == "pbx-main-1747109022.107"
    assert first["specversion"] == "1.0" and first["datacontenttype"] == "application/json"


def test_ids_are_deterministic_and_unique() -> None:
    first, second = translate(), translate()
    ids = [e["id"] for e in events_of(first)]
    assert ids == [e["id"] for e in events_of(second)]
    assert len(set(ids)) == len(ids)
    # Restarting in the middle of the file gives the same ids for the same lines.
    lines = sample_lines()
    tail = translate(lines[59:], first_line_no=60)
    assert {n: r["id"] for n, r in tail if isinstance(r, dict)} == {
        n: r["id"] for n, r in first if isinstance(r, dict) and n >= 60
    }
    # Another PBX prefix gives other ids and subjects.
    other = events_of(translate(prefix="pbx-branch"))
    assert not set(ids) & {e["id"] for e in other}
    assert all(e["subject"].startswith("pbx-branch-") for e in other)


def test_no_raw_caller_number_in_the_output() -> None:
    lines = sample_lines()
    numbers = {line.split("|")[6] for line in lines if "|ENTERQUEUE|" in line} - {"anonymous"}
    assert len(numbers) >= 10
    serialised = json.dumps([r if isinstance(r, dict) else str(r) for _, r in translate()], ensure_ascii=False)
    for number in numbers:
        for form in {number, normalise(number), number.lstrip("+0"), number[-7:]}:
            assert form not in serialised, form


def test_caller_ref_is_the_keyed_hash_and_same_caller_links() -> None:
    offered = [e for e in events_of(translate()) if e["type"] == "call.offered"]
    refs = {e["subject"]: e["data"].get("caller_ref") for e in offered}
    # +971506660006 and 00971506660006 are one caller.
    same = {refs["pbx-main-1747110192.130"], refs["pbx-main-1747114944.234"], refs["pbx-main-1747113014.196"]}
    assert same == {PS.ref("+971506660006")}
    assert refs["pbx-main-1747109022.107"] == PS.ref("0501110001")
    assert refs["pbx-main-1747111781.168"] is None  # anonymous caller: no ref
    # 12 caller-id strings in the sample, two of them the same number in two formats.
    raw = {line.split("|")[6] for line in sample_lines() if "|ENTERQUEUE|" in line} - {"anonymous"}
    assert len(raw) == 12
    assert len({r for r in refs.values() if r}) == len({normalise(n) for n in raw}) == 11


def test_languages_absent_without_a_map_and_wrap_up_absent_without_default() -> None:
    events = events_of(translate(languages=None, wrap_up_seconds=None))
    assert all("language" not in e["data"] for e in events)
    assert all("wrap_up_seconds" not in e["data"] for e in events)


def test_options_file() -> None:
    options = load_options(DATA / "options.yaml", pseudonymiser=PS)
    events = events_of(list(translate_numbered(enumerate(sample_lines(), 1), options)))
    assert {e["source"] for e in events} == {"/channels/pbx/main"}
    ended = {e["subject"]: e["data"] for e in events if e["type"] == "call.ended"}
    assert ended["pbx-main-1747109226.114"]["wrap_up_seconds"] == 20  # customer-care-en
    assert ended["pbx-main-1747109022.107"]["wrap_up_seconds"] == 30
    assert ended["pbx-main-1747109903.128"]["agent"] == "agent-lead-1003"  # explicit agent map


def test_follower_feeds_the_translator() -> None:
    options = QueueLogOptions(prefix="pbx-main", pseudonymiser=PS, languages=LANGUAGES, wrap_up_seconds=30)
    follower = FileFollower(SAMPLE, start="beginning", stop_at_eof=True)
    assert list(translate_numbered(follower.lines(), options)) == translate()


@pytest.mark.parametrize(
    ("host", "prefix"), [("PBX1.iacad.local", "pbx-pbx1"), ("call_centre", "pbx-call-centre"), ("..", "pbx-local")]
)
def test_default_prefix(host: str, prefix: str) -> None:
    assert default_prefix(host) == prefix
    assert default_prefix().startswith("pbx-")


def test_options_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("prefix: pbx\nlanguage: {q: ar}\n", encoding="utf-8")
    with pytest.raises(QueueLogError, match="unknown keys language"):
        load_options(bad, pseudonymiser=PS)
    bad.write_text("languages: {q: ar}\n", encoding="utf-8")
    with pytest.raises(QueueLogError, match="no prefix"):
        load_options(bad, pseudonymiser=PS)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"prefix": ""}, "prefix"),
        ({"prefix": "pbx main"}, "prefix"),
        ({"wrap_up_seconds": -5}, "wrap-up"),
        ({"queue_wrap_up": {"q": "30"}}, "wrap-up"),
        ({"timezone": "Mars/Olympus"}, "time zone"),
    ],
)
def test_bad_options_fail_at_once(options: dict[str, Any], message: str) -> None:
    with pytest.raises(QueueLogError, match=message):
        translate_queue_log([], **{"prefix": "pbx", "pseudonymiser": PS, **options})


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("", "at least 5"),
        ("1747109023|x|q|NONE", "at least 5"),
        ("-1|x|q|NONE|ENTERQUEUE", "field 1 (epoch)"),
        ("99999999999999|x|q|NONE|ENTERQUEUE", "field 1 (epoch)"),
        ("1747109023|x|q|NONE|", "field 5 (event)"),
        ("1747109023|x|q|NONE|ENTER QUEUE", "field 5 (event)"),
    ],
)
def test_parse_line_errors(line: str, fragment: str) -> None:
    with pytest.raises(QueueLogFormatError, match=re.escape(fragment)):
        parse_line(line)


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("1747109023|NONE|q|NONE|ENTERQUEUE||0501|1", "field 2 (callid)"),
        ("1747109023|1.2|NONE|NONE|ENTERQUEUE||0501|1", "field 3 (queue)"),
        ("1747109023|1.2||NONE|ABANDON|1|1|5", "field 3 (queue)"),
        ("1747109023|1.2|q|NONE|ENTERQUEUE||0501|first", "field 8 (position)"),
        ("1747109023|1.2|q|NONE|ABANDON||1|5", "field 6 (position) of ABANDON is missing"),
        ("1747109023|1.2|q|PJSIP/1|COMPLETEAGENT|5", "field 7 (calltime) of COMPLETEAGENT is missing"),
        ("1747109023|1.2|q|PJSIP/1|CONNECT||x|1", "field 6 (holdtime) of CONNECT is missing"),
        ("1747109023|1.2|q|PJSIP/1|ATTENDEDTRANSFER|BRIDGE|x", "ATTENDEDTRANSFER"),
    ],
)
def test_call_line_errors(line: str, fragment: str) -> None:
    ((line_no, result),) = translate([line], first_line_no=7)
    assert line_no == 7
    assert isinstance(result, AdapterError) and result.line_no == 7
    assert fragment in result.reason
    assert "0501" not in result.reason


def test_older_asterisk_layouts_and_crlf_are_accepted() -> None:
    lines = [
        "1747109023|1.2|q|NONE|ENTERQUEUE||0501234567\r\n",  # no position (Asterisk 1.x)
        "1747109030|1.2|q|NONE|EXITWITHTIMEOUT|1",  # position only
        "1747109031.250|1.3|q|NONE|ENTERQUEUE||",  # fractional epoch, no caller id
        "1747109040|1.3|q|SIP/2001|CONNECT|9",
        "1747109090|1.3|q|SIP/2001|TRANSFER|2000|from-internal|9|50",
    ]
    results = translate(lines)
    assert [r["type"] for _, r in results if isinstance(r, dict)] == [
        "call.offered",
        "call.abandoned",
        "call.offered",
        "call.answered",
        "call.ended",
    ]
    assert results[2][1]["time"] == "2025-05-13T08:03:51.250000+04:00"  # type: ignore[index]
    assert "caller_ref" not in results[2][1]["data"]  # type: ignore[index]
    for _, event in results:
        schemas.parse_event(event)


@pytest.mark.parametrize(
    ("member", "agent"),
    [
        ("PJSIP/1001", "agent-1001"),
        ("Agent/1001", "agent-1001"),
        ("SIP/2001", "agent-2001"),
        ("Local/1005@from-queue/n", "agent-1005"),
        ("1001", "agent-1001"),
        ("agent-1001", "agent-1001"),
        ("Team Lead", "agent-team-lead"),
        ("NONE", None),
        ("", None),
        ("PJSIP/", None),
    ],
)
def test_normalise_agent(member: str, agent: str | None) -> None:
    assert normalise_agent(member) == agent


def test_agent_map_wins() -> None:
    assert normalise_agent("PJSIP/1001", {"PJSIP/1001": "agent-noor"}) == "agent-noor"


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from("0123456789|.ABCEHKLNOQRTUXN -/\n\r"), max_size=60), max_size=8))
def test_never_raises_on_garbage(lines: list[str]) -> None:
    results = translate(lines)
    assert all(isinstance(r, dict | AdapterError) for _, r in results)
    for _, result in results:
        if isinstance(result, dict):
            schemas.parse_event(result)
