"""The protocol's money decisions, driven over ``httpx.MockTransport`` with no latency.

Each test scripts what the service does (tests/_wire.py: the documented contract in memory) and
asserts what the flow sent, in which order, how long it paused, and what it concluded: a run that
may exist is looked up before any re-send, never reported as refused, never paid twice.
"""

from __future__ import annotations

import email.utils
import random
import time
from typing import Any

import httpx
import pytest
from _wire import BASE, BATCHES, MODEL, RUNS, Clock, Driven, Service, body, drive, protocol, run_object

from runflow_nb._protocol import (
    BadAnswer,
    BatchRefused,
    RetryPolicy,
    idempotency_key_for,
    retry_after_seconds,
)
from runflow_nb._protocol.answers import _create_failure, _definitely_unsent
from runflow_nb._protocol.calls import Calls
from runflow_nb._protocol.transfers import check_output_url
from runflow_nb.errors import (
    APIError,
    DownloadError,
    NetworkError,
    RateLimitError,
    RunMayExistError,
    ServerError,
)

LIST = "GET /v1/runs"
CREATE = f"POST {RUNS}"
PROBE = "POST /v1/asset-uploads"


def submit(svc: Service, *, clock: Clock | None = None, out: Driven | None = None, key: str | None = None,
           sent: dict[str, Any] | None = None, **overrides: Any) -> Any:
    clock = clock or Clock()
    proto = protocol(clock=clock, **overrides)
    return drive(proto.submit(MODEL, sent or body(), idempotency_key=key), svc, clock=clock, out=out)


# -- a create that answers ----------------------------------------------------------------------

def test_a_created_run_is_returned_from_one_create_under_the_run_s_own_key() -> None:
    svc = Service()
    run = submit(svc)
    assert svc.routes() == [CREATE] and len(svc.created) == 1
    assert run.id == svc.created[0]["id"] and run.client_ref == "rfnb-ours" and run.status == "queued"
    sent = svc.requests[0]
    assert sent.headers["idempotency-key"] == idempotency_key_for("rfnb-ours")
    assert sent.url == f"{BASE}{RUNS}"
    assert httpx.Response(200, content=sent.content).json() == body()  # the body as given, nothing added


def test_an_explicit_idempotency_key_is_the_one_sent() -> None:
    svc = Service()
    submit(svc, key="my-own-key")
    assert svc.requests[0].headers["idempotency-key"] == "my-own-key"


def test_the_idempotency_key_is_stable_per_client_ref_and_differs_between_them() -> None:
    key = idempotency_key_for("rfnb-ours")
    assert key == idempotency_key_for("rfnb-ours") != idempotency_key_for("rfnb-other")
    assert key.startswith("rfnb-") and len(key) == 45 and all(c in "0123456789abcdef" for c in key[5:])
    assert key == "rfnb-" + __import__("hashlib").sha256(b"runflow_nb idempotency\nrfnb-ours").hexdigest()[:40]


# -- created, then 5xx: the classic double charge ---------------------------------------------

def test_created_then_500_is_looked_up_before_any_re_send_and_paid_once() -> None:
    svc = Service(create_faults=("created-500",))
    out = Driven()
    run = submit(svc, out=out)
    assert len(svc.created) == 1 and run.id == svc.created[0]["id"]
    assert svc.routes() == [CREATE, LIST]  # no re-send, and no key probe: a 5xx leaves nothing to replay
    assert out.sleeps == []


def test_created_then_500_on_a_server_that_replays_keys_is_still_looked_up_first() -> None:
    svc = Service(create_faults=("created-500",), honours_keys=True)
    submit(svc, honours_keys=True)  # even when key support is known, a failed create has no 201 to replay
    assert svc.routes() == [CREATE, LIST] and len(svc.created) == 1


def test_a_500_whose_run_no_look_up_sees_is_never_sent_again() -> None:
    svc = Service(create_faults=("500",))  # it made nothing, but nothing proves that yet
    out = Driven()
    with pytest.raises(RunMayExistError) as caught:
        submit(svc, out=out)
    assert svc.routes() == [CREATE, LIST, LIST, LIST, LIST]  # looked up over the grace period, never re-sent
    assert out.sleeps == [1.0, 2.0, 4.0] and not svc.created
    assert caught.value.client_ref == "rfnb-ours" and "may have been created" in str(caught.value)


def test_the_look_up_asks_for_our_client_ref_newest_first() -> None:
    svc = Service(create_faults=("created-500",))
    submit(svc, sent=body("rfnb-ours"))
    params = dict(svc.requests[1].url.params)
    assert params == {"q": "client_ref:rfnb-ours", "limit": "100", "sort_by": "created_at:desc"}


def test_a_look_up_that_fails_after_a_500_never_reports_the_run_as_refused() -> None:
    svc = Service(create_faults=("created-500",))

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/runs":
            return httpx.Response(503, json={"code": "MODEL_UNAVAILABLE", "message": "busy"})
        return svc(request)

    with pytest.raises(NetworkError) as caught:
        submit(handler)  # type: ignore[arg-type]
    assert "it may have been created" in str(caught.value) and "rfnb-ours" in str(caught.value)
    assert svc.count(CREATE) == 1  # never re-sent while its fate is unknown


def test_a_2xx_that_is_not_a_run_may_have_created_it_and_is_looked_up() -> None:
    svc = Service(create_faults=("html",))
    run = submit(svc, honours_keys=False)
    assert svc.routes() == [CREATE, LIST] and run.id == svc.created[0]["id"]


# -- the answer was lost ----------------------------------------------------------------------

def _unlisted(svc: Service) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:  # a list that does not show the run yet
        if request.url.path == "/v1/runs":
            svc.requests.append(request)
            return httpx.Response(200, json={"items": [], "next_pq": None})
        return svc(request)
    return handler


def test_a_lost_answer_is_re_sent_under_its_key_only_where_the_run_route_was_seen_replaying() -> None:
    svc = Service(create_faults=("created-drop",), honours_keys=True)
    run = submit(_unlisted(svc), replays={"runs": True})
    assert svc.routes() == [CREATE, LIST, LIST, LIST, LIST, CREATE]  # looked up first, then re-sent: replayed
    assert svc.requests[-1].headers["idempotency-key"] == svc.requests[0].headers["idempotency-key"]
    assert len(svc.created) == 1 and run.id == svc.created[0]["id"]  # the replay, not a second run


def test_a_server_that_replays_keys_is_never_trusted_on_a_route_where_no_replay_was_seen() -> None:
    svc = Service(create_faults=("created-drop",), honours_keys=True)
    with pytest.raises(RunMayExistError):
        submit(_unlisted(svc), replays={"batches": True})  # no probe, and no re-send on the run route
    assert PROBE not in svc.routes() and svc.count(CREATE) == 1 and len(svc.created) == 1


def test_a_replay_seen_on_the_run_route_is_remembered_for_that_route_only() -> None:
    svc = Service(honours_keys=True)
    proto = protocol()
    drive(proto.submit(MODEL, body("rfnb-a")), svc)
    assert proto.replays == {}
    drive(proto.submit(MODEL, body("rfnb-a")), svc)  # the same create again: the server replays it
    assert proto.replays == {"runs": True} and len(svc.created) == 1


def test_a_dropped_answer_without_key_support_is_looked_up_over_a_grace_period() -> None:
    svc = Service(create_faults=("created-drop",), honours_keys=False, hidden_lists=2)
    out = Driven()
    run = submit(svc, out=out)
    assert svc.routes() == [CREATE, LIST, LIST, LIST]  # listed on the third look-up
    assert out.sleeps == [1.0, 2.0] and run.id == svc.created[0]["id"] and len(svc.created) == 1


def test_a_dropped_answer_never_listed_is_never_re_sent_after_the_whole_grace_period() -> None:
    svc = Service(create_faults=("connect", "created-drop"), honours_keys=False)

    def handler(request: httpx.Request) -> httpx.Response:  # the dropped create never shows in the list
        if request.url.path == "/v1/runs":
            svc.requests.append(request)
            return httpx.Response(200, json={"items": [], "next_pq": None})
        return svc(request)

    out = Driven()
    with pytest.raises(RunMayExistError):
        submit(handler, out=out)  # type: ignore[arg-type]
    assert svc.routes() == [CREATE, CREATE] + [LIST] * 4  # a connection never made is re-sent; a lost answer not
    assert out.sleeps[1:4] == [1.0, 2.0, 4.0] and len(svc.created) == 1


def test_every_answer_lost_under_an_honoured_key_is_never_called_not_created() -> None:
    svc = Service(create_faults=("created-drop",) * 5, honours_keys=True)
    with pytest.raises(RunMayExistError) as caught:
        submit(_unlisted(svc), replays={"runs": True})
    text = str(caught.value)
    assert "may have been created" in text and "replays it by its Idempotency-Key" in text
    assert "never sent" not in text and "not created" not in text
    assert svc.count(CREATE) == 5 and len(svc.created) == 1


@pytest.mark.parametrize("exc", [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout])
def test_a_connection_never_made_is_re_sent_without_look_up_or_probe(exc: type[Exception]) -> None:
    tries = []

    def handler(request: httpx.Request) -> httpx.Response:
        tries.append(request)
        if len(tries) < 3:
            raise exc("no connection", request=request)
        return httpx.Response(201, json=run_object("0193-r", "rfnb-ours"))

    out = Driven()
    run = submit(handler, out=out)  # type: ignore[arg-type]
    assert [r.url.path for r in tries] == [RUNS] * 3 and run.id == "0193-r"
    assert len(out.sleeps) == 2 and 0 <= out.sleeps[0] <= 0.5 and 0 <= out.sleeps[1] <= 1.0


def test_a_server_never_reached_says_the_run_was_never_sent() -> None:
    svc = Service(create_faults=("connect",) * 5)
    with pytest.raises(NetworkError) as caught:
        submit(svc)
    assert "could not be reached, so the run was never sent" in str(caught.value)
    assert svc.routes() == [CREATE] * 5  # at most 5 attempts, as documented


@pytest.mark.parametrize("exc", [httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError,
                                 httpx.WriteTimeout])
def test_a_request_that_may_have_arrived_counts_as_maybe_created(exc: type[Exception]) -> None:
    request = httpx.Request("POST", BASE)
    assert not _definitely_unsent(exc("x", request=request))
    failure = _create_failure(exc("x", request=request), "submitting")
    assert failure is not None and failure[1] is True


@pytest.mark.parametrize("exc", [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout])
def test_a_request_that_never_left_is_definitely_unsent(exc: type[Exception]) -> None:
    assert _definitely_unsent(exc("x", request=httpx.Request("POST", BASE)))
    failure = _create_failure(exc("x", request=httpx.Request("POST", BASE)), "submitting")
    assert failure is not None and failure[1] is False and isinstance(failure[0], NetworkError)


def test_create_failures_classified() -> None:
    request = httpx.Request("POST", BASE)
    assert _create_failure(httpx.Response(201, json={}, request=request), "x") is None
    assert _create_failure(httpx.Response(409, json={}, request=request), "x") is None
    assert _create_failure(httpx.Response(499, json={}, request=request), "x") is None
    limited = _create_failure(httpx.Response(429, headers={"Retry-After": "3"}, json={}, request=request), "x")
    assert limited is not None and isinstance(limited[0], RateLimitError) and limited[1:] == (False, 3.0)
    failed = _create_failure(httpx.Response(500, json={}, request=request), "x")
    assert failed is not None and isinstance(failed[0], ServerError) and failed[1:] == (True, None)
    lost = _create_failure(httpx.ReadTimeout("gone", request=request), "submitting the run")
    assert lost is not None and lost[1:] == (True, None)
    assert str(lost[0]) == "submitting the run: ReadTimeout: gone"


# -- 429, 409, other 4xx ------------------------------------------------------------------------

def test_a_429_without_retry_after_backs_off_and_is_never_looked_up() -> None:
    svc = Service(create_faults=("429", "429"))
    out = Driven()
    run = submit(svc, out=out)
    assert svc.routes() == [CREATE] * 3 and run.id == svc.created[0]["id"]
    assert len(out.sleeps) == 2 and 0 <= out.sleeps[0] <= 0.5 and 0 <= out.sleeps[1] <= 1.0


def test_a_429_with_retry_after_waits_what_the_server_asked() -> None:
    svc = Service(create_faults=("429:7", "429:0"))
    out = Driven()
    submit(svc, out=out)
    assert out.sleeps[0] == 7.0
    assert 0 <= out.sleeps[1] <= 0.1  # Retry-After: 0 still keeps a tenth of the backoff
    assert svc.routes() == [CREATE] * 3


def test_a_huge_retry_after_is_capped() -> None:
    svc = Service(create_faults=("429:86400",))
    out = Driven()
    submit(svc, out=out)
    assert out.sleeps == [120.0]


def test_every_create_refused_with_429_says_it_was_not_created() -> None:
    svc = Service(create_faults=("429",) * 5)
    with pytest.raises(RateLimitError) as caught:
        submit(svc)
    assert "the server refused the run each time, so it was not created" in str(caught.value)
    assert svc.routes() == [CREATE] * 5 and not svc.created


def test_the_retries_of_a_create_are_bounded_by_max_retries() -> None:
    svc = Service(create_faults=("429",) * 3)
    with pytest.raises(RateLimitError):
        submit(svc, max_retries=2)
    assert svc.count(CREATE) == 3


def test_a_409_for_the_key_is_resolved_by_look_up_without_a_re_send() -> None:
    # An earlier copy of this run reached the server under the same key with another body.
    earlier = body("rfnb-ours", metadata={"library": "runflow_nb/x"})
    svc = Service()
    first = submit(svc, sent=earlier)
    changed = body("rfnb-ours", metadata={"library": "runflow_nb/x"})
    changed["input"]["image_urls"] = ["https://img.test/re-uploaded.png"]
    out = Driven()
    again = submit(svc, sent=changed, out=out)
    assert again.id == first.id and len(svc.created) == 1
    assert svc.routes() == [CREATE, CREATE, LIST]


def test_a_409_whose_run_is_not_listed_yet_is_looked_up_over_the_grace_period_then_not_re_sent() -> None:
    svc = Service()
    submit(svc, sent=body("rfnb-ours"))
    svc.runs.clear()  # listed nowhere (yet)
    changed = body("rfnb-ours")
    changed["input"]["duration"] = 6
    out = Driven()
    with pytest.raises(NetworkError) as caught:
        submit(svc, sent=changed, out=out)
    assert "409" in str(caught.value) and "it may have been created" in str(caught.value)
    assert svc.routes()[1:] == [CREATE, LIST, LIST, LIST, LIST] and out.sleeps == [1.0, 2.0, 4.0]


def test_a_422_is_raised_at_once_without_look_up() -> None:
    svc = Service(create_faults=("422",))
    with pytest.raises(APIError) as caught:
        submit(svc)
    assert caught.value.status_code == 422 and svc.routes() == [CREATE]


# -- the look-up filters on our side ------------------------------------------------------------

def find(svc: Any, client_ref: str = "rfnb-ours", **kwargs: Any) -> Any:
    return drive(protocol().find(client_ref, **kwargs), svc)


def test_a_list_that_ignores_filters_never_gives_another_run() -> None:
    others = [run_object(f"0193-other-{i}", f"rfnb-other-{i}") for i in range(5)]
    svc = Service(list_filters=False, others=others)
    assert find(svc) is None
    svc.runs.insert(2, run_object("0193-ours", "rfnb-ours"))
    assert find(svc).id == "0193-ours"


def test_another_caller_s_run_with_our_client_ref_is_skipped_for_ours() -> None:
    mine = {"library": "runflow_nb/x", "experiment": "horses"}
    runs = [run_object("0193-ours", "rfnb-ours", metadata=mine, created_at="2026-11-29T09:00:00Z"),
            run_object("0193-theirs", "rfnb-ours", metadata={"experiment": "cats"}, created_at="2026-11-29T11:00:00Z")]
    svc = Service(others=runs)
    assert find(svc, metadata=mine).id == "0193-ours"
    assert find(Service(others=runs[1:]), metadata=mine) is None  # theirs only: not ours
    missing = run_object("0193-part", "rfnb-ours", metadata={"library": "runflow_nb/x"})  # lacks a key we sent
    assert find(Service(others=[missing]), metadata=mine) is None


def test_a_run_without_shown_metadata_is_taken_only_when_no_run_is_verified_ours() -> None:
    mine = {"library": "runflow_nb/x"}
    bare = run_object("0193-bare", "rfnb-ours", metadata=None, created_at="2026-11-29T11:00:00Z")
    ours = run_object("0193-ours", "rfnb-ours", metadata=mine, created_at="2026-11-29T09:00:00Z")
    assert find(Service(others=[ours, bare]), metadata=mine).id == "0193-ours"
    assert find(Service(others=[bare]), metadata=mine).id == "0193-bare"
    assert find(Service(others=[bare])).id == "0193-bare"  # no metadata of ours: nothing tells runs apart


def test_the_newest_of_our_runs_is_chosen_even_from_a_list_in_the_wrong_order() -> None:
    old = run_object("0193-old", "rfnb-ours", created_at="2026-11-29T09:00:00Z")
    new = run_object("0193-new", "rfnb-ours", created_at="2026-11-29T10:00:00Z")
    for order in ("desc", "asc"):
        assert find(Service(others=[old, new], list_order=order)).id == "0193-new"


def test_the_look_up_pages_through_a_list_that_ignores_filters() -> None:
    others = [run_object(f"0193-other-{i}", f"rfnb-other-{i}") for i in range(7)]
    ours = run_object("0193-ours", "rfnb-ours")
    svc = Service(list_filters=False, page_size=3, others=[ours, *others])  # ours is the oldest: last page
    assert find(svc).id == "0193-ours"
    assert [r.url.params.get("pq") for r in svc.requests] == [None, "3", "6"]
    assert all(r.url.params["q"] == "client_ref:rfnb-ours" for r in svc.requests)


def test_the_look_up_reads_at_most_max_pages() -> None:
    others = [run_object(f"0193-other-{i}", f"rfnb-other-{i}") for i in range(10)]
    svc = Service(list_filters=False, page_size=2, others=[run_object("0193-ours", "rfnb-ours"), *others])
    assert find(svc, max_pages=3) is None and len(svc.requests) == 3


def test_the_look_up_follows_either_cursor_spelling_and_stops_on_a_repeated_one() -> None:
    pages = {None: {"items": [run_object("x1", "other")], "next": "/v1/runs?pq=B&q=client_ref:rfnb-ours"},
             "B": {"data": [run_object("x2", "other")], "next_cursor": "C"},
             "C": {"results": [run_object("x3", "other")], "next_pq": "C"}}
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.params.get("pq"))
        return httpx.Response(200, json=pages[request.url.params.get("pq")])

    assert find(handler) is None
    assert seen == [None, "B", "C"]  # page C names itself next: seen, so no endless loop


def test_a_bare_list_answer_is_read_and_a_link_to_another_host_gives_up_only_its_cursor() -> None:
    seen: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        if len(seen) == 1:
            return httpx.Response(200, json={"items": [run_object("x1", "other")],
                                             "next": "https://evil.test/v1/runs?pq=P2&q=client_ref:theirs"})
        return httpx.Response(200, json=[run_object("0193-ours", "rfnb-ours")])

    assert find(handler).id == "0193-ours"
    assert seen[1].host == "api.runflow.test" and seen[1].params["pq"] == "P2"
    assert seen[1].params["q"] == "client_ref:rfnb-ours"


def test_a_link_under_a_base_path_is_followed_on_our_host() -> None:
    seen: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        if len(seen) == 1:
            return httpx.Response(200, json={"items": [run_object("x1", "other")],
                                             "next": "https://api.runflow.test/prefix/v1/runs?pq=P2"})
        return httpx.Response(200, json={"items": []})

    proto = protocol()
    proto.base_url = "https://api.runflow.test/prefix"
    assert drive(proto.find("rfnb-ours"), handler) is None
    assert str(seen[1]).startswith("https://api.runflow.test/prefix/v1/runs?") and seen[1].params["pq"] == "P2"


@pytest.mark.parametrize(("client_ref", "q"), [
    ("rfnb-plain", "client_ref:rfnb-plain"),
    ("with space", 'client_ref:"with space"'),
    ('a"quote', 'client_ref:"a\\"quote"'),
    ("a|pipe", 'client_ref:"a|pipe"'),
    ("back\\slash x", 'client_ref:"back\\\\slash x"'),
    ("", 'client_ref:""'),
])
def test_the_client_ref_filter_is_quoted_when_it_must_be(client_ref: str, q: str) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.params["q"])
        return httpx.Response(200, json={"items": []})

    find(handler, client_ref)
    assert seen == [q]


def test_an_html_page_for_the_list_is_no_proof_the_run_does_not_exist() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/html"}, content=b"<html>login</html>")

    with pytest.raises(BadAnswer):
        find(handler)


def test_items_without_an_id_or_not_objects_are_skipped() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"items": ["rfnb-ours", {"client_ref": "rfnb-ours"},
                                                   {"id": "0193-ours", "client_ref": "rfnb-ours"}]})

    assert find(handler).id == "0193-ours"


# -- one request with retries (call) --------------------------------------------------------

def call(handler: Any, *, clock: Clock | None = None, out: Driven | None = None, **kwargs: Any) -> Any:
    clock = clock or Clock()
    proto = protocol(clock=clock)
    kwargs.setdefault("what", "reading")
    return drive(proto.call(kwargs.pop("method", "GET"), "/v1/x", **kwargs), handler, clock=clock, out=out)


def answers(*statuses: int | type[Exception], retry_after: str | None = None) -> Any:
    left = list(statuses)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status = left.pop(0) if left else 200
        if isinstance(status, type):
            raise status("no answer", request=request)
        headers = {"Retry-After": retry_after} if retry_after and status == 429 else {}
        return httpx.Response(status, headers=headers, json={"code": "X", "message": f"HTTP {status}"})

    handler.seen = seen  # type: ignore[attr-defined]
    return handler


def test_a_call_retries_5xx_429_and_lost_answers_when_idempotent() -> None:
    handler = answers(500, 429, httpx.ReadTimeout, 503)
    out = Driven()
    resp = call(handler, out=out)
    assert resp.status_code == 200 and len(handler.seen) == 5 and len(out.sleeps) == 4
    assert all(0 <= s <= 0.5 * 2**i for i, s in enumerate(out.sleeps))


def test_a_non_idempotent_call_is_never_re_sent_after_a_5xx_or_a_lost_answer() -> None:
    for fault in (500, httpx.ReadTimeout):
        handler = answers(fault)
        with pytest.raises((ServerError, NetworkError)):
            call(handler, method="POST", idempotent=False)
        assert len(handler.seen) == 1


def test_a_non_idempotent_call_is_re_sent_after_a_429_or_a_connection_never_made() -> None:
    for fault in (429, httpx.ConnectError):
        handler = answers(fault)
        assert call(handler, method="POST", idempotent=False).status_code == 200
        assert len(handler.seen) == 2


def test_a_4xx_is_raised_at_once() -> None:
    for status in (400, 401, 404, 409, 422):
        handler = answers(status)
        with pytest.raises(APIError) as caught:
            call(handler)
        assert caught.value.status_code == status and len(handler.seen) == 1


def test_a_call_gives_up_after_max_retries_with_the_last_error() -> None:
    handler = answers(*([503] * 6))
    with pytest.raises(ServerError) as caught:
        call(handler)
    assert len(handler.seen) == 5 and "HTTP 503" in str(caught.value)  # at most 5 attempts, as documented
    handler = answers(*([httpx.ReadTimeout] * 6))
    with pytest.raises(NetworkError, match="reading: ReadTimeout: no answer"):
        call(handler)
    assert len(handler.seen) == 5


def test_a_call_honours_retry_after() -> None:
    handler = answers(429, retry_after="9")
    out = Driven()
    call(handler, out=out)
    assert out.sleeps == [9.0]


def test_a_call_never_pauses_past_its_deadline() -> None:
    clock = Clock()
    handler = answers(429, 429, retry_after="5")
    out = Driven()
    with pytest.raises(RateLimitError):
        call(handler, clock=clock, out=out, deadline=clock.now + 8)  # the second 5 s pause would end past it
    assert out.sleeps == [5.0] and len(handler.seen) == 2
    handler = answers(httpx.ReadTimeout, httpx.ReadTimeout)
    out = Driven()
    with pytest.raises(NetworkError):
        call(handler, clock=clock, out=out, deadline=clock.now)  # no time at all: no retry
    assert out.sleeps == [] and len(handler.seen) == 1


def test_a_pause_ending_exactly_at_the_deadline_is_not_taken() -> None:
    clock = Clock()
    calls = Calls(base_url=BASE, retry=RetryPolicy(), poll_interval=1, poll_max=1, wait_timeout=1, clock=clock)
    assert calls._pause(5.0, None) and calls._pause(4.9, clock.now + 5)
    assert not calls._pause(5.0, clock.now + 5)


def test_every_send_carries_a_deadline_no_later_than_the_request_timeout_or_the_outer_one() -> None:
    clock = Clock()
    out = Driven()
    call(answers(), clock=clock, out=out)
    assert out.sends[0].deadline == clock.now + 60.0
    out = Driven()
    call(answers(), clock=clock, out=out, deadline=clock.now + 5)
    assert out.sends[0].deadline == clock.now + 5
    out = Driven()
    call(answers(), clock=clock, out=out, deadline=clock.now + 500)
    assert out.sends[0].deadline == clock.now + 60.0
    out = Driven()
    submit(Service(), clock=clock, out=out)
    assert out.sends[0].deadline == clock.now + 60.0


def test_a_call_passes_its_parts_on() -> None:
    out = Driven()
    call(answers(), out=out, method="POST", json={"a": 1}, params={"b": 2}, headers={"X-H": "v"}, auth=False)
    sent = out.sends[0]
    assert (sent.method, sent.url, sent.json, sent.params, sent.headers, sent.auth) == (
        "POST", f"{BASE}/v1/x", {"a": 1}, {"b": 2}, {"X-H": "v"}, False)
    out = Driven()
    call(answers(), out=out)
    assert out.sends[0].auth is True and out.sends[0].headers == {}


def test_a_call_names_what_failed() -> None:
    with pytest.raises(NetworkError, match=r"^GET /v1/x: ConnectError"):
        drive(protocol(max_retries=0).call("GET", "/v1/x"), answers(httpx.ConnectError))


# -- Retry-After and the backoff --------------------------------------------------------------

def response(headers: dict[str, str]) -> httpx.Response:
    return httpx.Response(429, headers=headers)


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert retry_after_seconds(response({"Retry-After": "12"})) == 12.0
    assert retry_after_seconds(response({"Retry-After": "1.5"})) == 1.5
    assert retry_after_seconds(response({"Retry-After": "-4"})) == 0.0
    assert retry_after_seconds(response({})) is None
    assert retry_after_seconds(response({"Retry-After": ""})) is None
    assert retry_after_seconds(response({"Retry-After": "soon"})) is None
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 27 <= retry_after_seconds(response({"Retry-After": when})) <= 30  # type: ignore[operator]
    past = email.utils.formatdate(time.time() - 300, usegmt=True)
    assert retry_after_seconds(response({"Retry-After": past})) == 0.0


def test_the_backoff_draws_full_jitter_below_an_exponential_capped_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[tuple[float, float]] = []

    def uniform(a: float, b: float) -> float:
        drawn.append((a, b))
        return b

    monkeypatch.setattr(random, "uniform", uniform)
    policy = RetryPolicy()
    assert [policy.delay(n) for n in range(8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert all(a == 0 for a, _ in drawn)
    assert RetryPolicy(base_s=2.0, cap_s=5.0).delay(0) == 2.0 and RetryPolicy(base_s=2.0, cap_s=5.0).delay(2) == 5.0


def test_retry_after_wins_over_the_backoff_but_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(random, "uniform", lambda a, b: b)
    policy = RetryPolicy()
    assert policy.delay(0, 7.0) == 7.0
    assert policy.delay(3, 0.0) == pytest.approx(0.4)  # a tenth of the backoff when the server says 0
    assert policy.delay(3, 0.3) == pytest.approx(0.4) and policy.delay(3, 0.5) == 0.5
    assert policy.delay(0, 500.0) == 120.0 and RetryPolicy(max_retry_after_s=60.0).delay(0, 500.0) == 60.0
    assert policy.delay(0, 120.0) == 120.0


def test_the_backoff_defaults_match_the_documented_retry_advice() -> None:
    policy = RetryPolicy()
    # "max 5 attempts, delay capped near 32 s": four retries after the first try, a 30 s cap
    assert (policy.max_retries, policy.base_s, policy.cap_s, policy.max_retry_after_s) == (4, 0.5, 30.0, 120.0)
    assert policy.attempts == 5 and RetryPolicy(max_retries=9).attempts == 5


def test_the_backoff_is_spread_over_its_whole_range() -> None:
    random.seed(15)
    policy = RetryPolicy()
    for attempt, bound in ((0, 0.5), (2, 2.0), (9, 30.0)):
        samples = [policy.delay(attempt) for _ in range(300)]
        assert 0 <= min(samples) < 0.1 * bound and 0.9 * bound < max(samples) <= bound


# -- output URLs ---------------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["https://cdn.test/v.mp4?sig=1", "http://cdn.test/v.mp4"])
def test_http_output_urls_pass(url: str) -> None:
    check_output_url(url)


@pytest.mark.parametrize(("url", "scheme"), [
    ("file:///etc/passwd", "file"), ("ftp://host/v.mp4", "ftp"), ("javascript:alert(1)", "javascript"),
    ("data:video/mp4;base64,AAAA", "data"), ("s3://bucket/v.mp4", "s3"), ("/local/v.mp4", "no"),
    ("https:///no-host", "https"), ("", "no"),
])
def test_other_output_urls_are_refused_before_any_request(url: str, scheme: str) -> None:
    with pytest.raises(DownloadError, match=f"non-http\\(s\\) URL \\({scheme} scheme\\)"):
        check_output_url(url)
    sent: list[httpx.Request] = []

    class Sink:
        def abort(self) -> None: ...

    with pytest.raises(DownloadError):
        drive(protocol().download(url, lambda _size: Sink()), lambda r: sent.append(r) or httpx.Response(200))
    assert sent == []


# -- uploads: the documented three steps ----------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + b"x" * 100


def upload(svc: Service, data: bytes = PNG, *, proto: Any = None, clock: Clock | None = None,
           out: Driven | None = None) -> str:
    proto = proto or protocol(clock=clock)
    return drive(proto.upload(data, filename="reference1.png", content_type="image/png"), svc, clock=clock, out=out)


def test_an_upload_takes_the_three_documented_steps_with_their_field_names() -> None:
    svc = Service()
    out = Driven()
    url = upload(svc, out=out)
    assert [f"{r.method} {r.url.host}" for r in svc.requests] == [
        "POST api.runflow.test", "PUT storage.test", "POST api.runflow.test"]
    session, put, confirm = svc.requests
    asset_id = next(iter(svc.assets))
    assert session.url.path == "/v1/asset-uploads"
    assert httpx.Response(200, content=session.content).json() == {
        "filename": "reference1.png", "mime_type": "image/png", "size_bytes": len(PNG)}
    assert put.url == f"https://storage.test/put/{asset_id}" and put.content == PNG
    assert put.headers["content-type"] == "image/png"
    assert out.sends[1].auth is False and all(s.auth for s in (out.sends[0], out.sends[2]))  # never the key
    assert out.sends[1].deadline == 1000.0 + 900.0
    assert confirm.url.path == f"/v1/asset-uploads/{asset_id}/confirmations"
    assert httpx.Response(200, content=confirm.content).json() == {"folder_id": None}
    assert url == f"https://cdn.test/{asset_id}.png?sig=1" and svc.assets[asset_id]["bytes"] == PNG


def test_the_same_bytes_reuse_their_asset_for_a_while_then_upload_again() -> None:
    clock = Clock()
    proto = protocol(clock=clock)
    svc = Service()
    first = upload(svc, proto=proto, clock=clock)
    assert upload(svc, proto=proto, clock=clock) == first and len(svc.requests) == 3
    assert upload(svc, PNG + b"other", proto=proto, clock=clock) != first and len(svc.requests) == 6
    clock.now += 30 * 60 - 1
    assert upload(svc, proto=proto, clock=clock) == first and len(svc.requests) == 6
    clock.now += 1
    assert upload(svc, proto=proto, clock=clock) != first and len(svc.requests) == 9


def test_an_expired_upload_url_starts_the_upload_again_twice_at_most() -> None:
    svc = Service()
    svc.put_faults = [403, 403]
    url = upload(svc)
    assert [r.method for r in svc.requests] == ["POST", "PUT", "POST", "PUT", "POST", "PUT", "POST"]
    assert url.startswith("https://cdn.test/")
    svc = Service()
    svc.put_faults = [403, 403, 403]
    with pytest.raises(APIError, match="refused \\(403: expired\\) three times"):
        upload(svc)
    assert [r.method for r in svc.requests] == ["POST", "PUT"] * 3  # never confirmed


def test_a_put_that_fails_on_the_server_is_retried_and_a_refused_one_is_not() -> None:
    svc = Service()
    svc.put_faults = [500, 429]
    out = Driven()
    upload(svc, out=out)
    assert [r.method for r in svc.requests] == ["POST", "PUT", "PUT", "PUT", "POST"] and len(out.sleeps) == 2
    svc = Service()
    svc.put_faults = [400]
    with pytest.raises(APIError) as caught:
        upload(svc)
    assert caught.value.status_code == 400 and [r.method for r in svc.requests] == ["POST", "PUT"]


def test_a_put_that_keeps_failing_gives_up_after_max_retries() -> None:
    svc = Service()
    svc.put_faults = [502] * 6
    with pytest.raises(APIError) as caught:
        upload(svc, proto=protocol(max_retries=4))
    assert caught.value.status_code == 502 and svc.count("PUT /put/" + next(iter(svc.assets))) == 5

    def dropped(request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            raise httpx.WriteError("broken pipe", request=request)
        return svc(request)

    with pytest.raises(NetworkError, match=r"^uploading the file: WriteError: broken pipe"):
        drive(protocol(max_retries=1).upload(PNG, filename="r.png", content_type="image/png"), dropped)


@pytest.mark.parametrize("session", [{"upload_url": "https://storage.test/put/x"}, {"asset_id": "a1"}, ["a list"]])
def test_an_upload_session_without_its_documented_fields_is_an_error(session: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, json=session)

    with pytest.raises(APIError, match="no asset_id/upload_url"):
        drive(protocol().upload(PNG, filename="r.png", content_type="image/png"), handler)


def test_a_confirmation_without_a_url_is_an_error() -> None:
    svc = Service()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/confirmations"):
            return httpx.Response(201, json={"id": "a1"})
        return svc(request)

    with pytest.raises(APIError, match="has no url"):
        drive(protocol().upload(PNG, filename="r.png", content_type="image/png"), handler)


def test_the_look_up_after_a_500_skips_another_caller_s_newer_run_with_our_client_ref() -> None:
    theirs = run_object("0193-theirs", "rfnb-ours", metadata={"library": "other-tool"},
                        created_at="2026-11-29T23:00:00Z")  # newer than anything we make
    svc = Service(create_faults=("created-500",), others=[theirs])
    run = submit(svc)
    assert run.id == svc.created[0]["id"] != "0193-theirs" and len(svc.created) == 1


def test_a_failed_look_up_says_what_failed_and_what_to_do() -> None:
    svc = Service(create_faults=("created-500",))

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/runs":
            raise httpx.ReadTimeout("slow list", request=request)
        return svc(request)

    with pytest.raises(NetworkError) as caught:
        submit(handler, max_retries=0)  # type: ignore[arg-type]
    assert str(caught.value) == (
        "HTTP 500: INTERNAL: the create failed half-way; looking the run up by client_ref rfnb-ours then failed "
        "(looking up the run by client_ref: ReadTimeout: slow list): it may have been created — look it up "
        "again before submitting anew")


def test_the_look_up_reads_five_pages_by_default() -> None:
    others = [run_object(f"0193-other-{i}", f"rfnb-other-{i}") for i in range(12)]
    svc = Service(list_filters=False, page_size=2, others=[run_object("0193-ours", "rfnb-ours"), *others])
    assert find(svc) is None and len(svc.requests) == 5


def test_a_client_ref_with_capital_letters_is_sent_unquoted() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.params["q"])
        return httpx.Response(200, json={"items": []})

    find(handler, "rfnb-XYZ")
    assert seen == ["client_ref:rfnb-XYZ"]


@pytest.mark.parametrize("key", ["items", "data", "runs", "results"])
def test_the_runs_are_read_under_any_usual_list_key(key: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={key: [run_object("0193-ours", "rfnb-ours")]})

    assert find(handler).id == "0193-ours"


def test_an_answer_without_a_list_of_runs_finds_nothing_and_stops() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"total": 0, "next_pq": "again"})

    assert find(handler) is None and len(sent) == 1


def test_an_html_list_answer_names_its_status() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/html"}, content=b"<html>login</html>")

    with pytest.raises(BadAnswer) as caught:
        find(handler)
    assert caught.value.status_code == 200
    assert str(caught.value) == "HTTP 200: looking up the run by client_ref: HTTP 200 is not a list of runs"


def pages_followed(base_url: str, link: str) -> list[httpx.URL]:
    seen: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        if len(seen) == 1:
            return httpx.Response(200, json={"items": [run_object("x1", "other")], "next": link})
        return httpx.Response(200, json={"items": []})

    proto = protocol()
    proto.base_url = base_url
    drive(proto.find("rfnb-ours"), handler)
    return seen


def test_a_same_host_link_is_followed_with_its_own_path_and_query() -> None:
    seen = pages_followed("https://api.runflow.test/prefix",
                          "https://api.runflow.test/prefix/v1/runs/search?pq=P2&from_prev=1")
    assert seen[1].path == "/prefix/v1/runs/search"
    assert dict(seen[1].params) == {"q": "client_ref:rfnb-ours", "limit": "100", "sort_by": "created_at:desc",
                                    "pq": "P2", "from_prev": "1"}
    seen = pages_followed("http://api.runflow.test", "http://api.runflow.test/v1/runs/search?pq=P3")
    assert seen[1].path == "/v1/runs/search" and seen[1].params["pq"] == "P3"


def test_a_link_path_outside_the_base_path_is_taken_as_relative_to_the_api() -> None:
    seen = pages_followed("https://api.runflow.test/prefix", "/v1/runs?pq=P2")
    assert seen[1].path == "/prefix/v1/runs" and seen[1].params["pq"] == "P2"
    seen = pages_followed("https://api.runflow.test/prefix", "/prefixed/v1/runs?pq=P2")
    assert seen[1].path == "/prefix/prefixed/v1/runs"


def test_another_host_s_link_gives_only_its_cursor_or_ends_the_look_up() -> None:
    seen = pages_followed(BASE, "https://evil.test/elsewhere?pq=P9&q=client_ref:theirs")
    assert seen[1].host == "api.runflow.test" and seen[1].path == "/v1/runs"
    assert seen[1].params["pq"] == "P9" and seen[1].params["q"] == "client_ref:rfnb-ours"
    assert len(pages_followed(BASE, "https://evil.test/elsewhere?page=2")) == 1
    downgraded = pages_followed(BASE, "http://api.runflow.test/v1/runs?pq=P2")  # another scheme: another origin
    assert str(downgraded[1]).startswith("https://api.runflow.test/v1/runs?") and downgraded[1].params["pq"] == "P2"


def test_an_http_link_on_an_http_base_is_a_link_not_a_token() -> None:
    seen = pages_followed("http://api.runflow.test", "http://api.runflow.test/v1/runs?pq=P4")
    assert seen[1].params["pq"] == "P4" and "http" not in seen[1].params["pq"]


def test_an_upload_session_naming_its_asset_by_id_is_followed() -> None:
    svc = Service()

    def handler(request: httpx.Request) -> httpx.Response:
        answer = svc(request)
        if request.url.path == "/v1/asset-uploads":
            data = answer.json()
            return httpx.Response(201, json={"id": data["asset_id"], "upload_url": data["upload_url"]})
        return answer

    url = drive(protocol().upload(PNG, filename="r.png", content_type="image/png"), handler)
    assert url == f"https://cdn.test/{next(iter(svc.assets))}.png?sig=1"


def test_an_asset_id_is_one_path_segment_in_the_confirmation() -> None:
    paths: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.raw_path)
        if request.url.host == "storage.test":
            return httpx.Response(200)
        if request.url.path == "/v1/asset-uploads":
            return httpx.Response(201, json={"asset_id": "a/b c", "upload_url": "https://storage.test/p"})
        return httpx.Response(201, json={"url": "https://cdn.test/a.png"})

    drive(protocol().upload(PNG, filename="r.png", content_type="image/png"), handler)
    assert paths[-1] == b"/v1/asset-uploads/a%2Fb%20c/confirmations"


@pytest.mark.parametrize(("failing", "what"), [("/v1/asset-uploads", "starting an upload"),
                                                ("/confirmations", "confirming the upload")])
def test_a_failed_upload_step_is_named(failing: str, what: str) -> None:
    svc = Service()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(failing):
            raise httpx.ConnectError("refused", request=request)
        return svc(request)

    with pytest.raises(NetworkError) as caught:
        drive(protocol(max_retries=0).upload(PNG, filename="r.png", content_type="image/png"), handler)
    assert str(caught.value) == f"{what}: ConnectError: refused"


def test_upload_errors_carry_their_status_and_exact_text() -> None:
    svc = Service()
    svc.put_faults = [403, 403, 403]
    with pytest.raises(APIError) as caught:
        upload(svc)
    assert caught.value.status_code == 403
    assert str(caught.value) == "HTTP 403: the upload URL was refused (403: expired) three times"

    def no_url(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, json={"id": "a1"}) if request.url.path.endswith("/confirmations") else svc(request)

    with pytest.raises(APIError) as caught:
        drive(protocol().upload(PNG, filename="r.png", content_type="image/png"), no_url)
    assert str(caught.value) == "HTTP 201: the upload confirmation (the Asset record) has no url"

    def listed(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, json=["a1"]) if request.url.path.endswith("/confirmations") else svc(request)

    with pytest.raises(APIError, match="has no url"):
        drive(protocol().upload(PNG + b"2", filename="r.png", content_type="image/png"), listed)

    def no_session(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, json={"asset_id": "a1"})

    with pytest.raises(APIError) as caught:
        drive(protocol().upload(PNG, filename="r.png", content_type="image/png"), no_session)
    assert str(caught.value) == "HTTP 201: the upload answer has no asset_id/upload_url"


def test_a_redirect_status_from_storage_is_not_taken_as_stored() -> None:
    svc = Service()
    svc.put_faults = [300]
    upload(svc)
    assert [r.method for r in svc.requests] == ["POST", "PUT", "PUT", "POST"]


def test_a_put_is_tried_max_retries_plus_one_times() -> None:
    svc = Service()
    svc.put_faults = [503] * 3
    with pytest.raises(ServerError):
        upload(svc, proto=protocol(max_retries=2))
    assert [r.method for r in svc.requests] == ["POST", "PUT", "PUT", "PUT"]


def test_giving_up_takes_no_pause_after_the_last_try() -> None:
    for fault in (503, httpx.ReadTimeout):
        out = Driven()
        with pytest.raises((ServerError, NetworkError)):
            call(answers(*([fault] * 6)), out=out)
        assert len(out.sleeps) == 4


def test_a_2xx_that_is_not_a_run_and_is_not_listed_is_never_re_sent() -> None:
    svc = Service(create_faults=("html",), honours_keys=False)

    def handler(request: httpx.Request) -> httpx.Response:  # the run made by the "html" create is not listed
        if request.url.path == "/v1/runs":
            svc.requests.append(request)
            return httpx.Response(200, json={"items": []})
        return svc(request)

    out = Driven()
    with pytest.raises(RunMayExistError):
        submit(handler, out=out)  # type: ignore[arg-type]
    assert svc.routes() == [CREATE] + [LIST] * 4 and len(svc.created) == 1


def test_a_create_never_sent_says_so_in_full() -> None:
    svc = Service(create_faults=("connect",))
    with pytest.raises(NetworkError) as caught:
        submit(svc, max_retries=0)
    assert str(caught.value) == ("submitting the run: ConnectError: connection refused — the server could not be "
                                 "reached, so the run was never sent")


def test_a_409_whose_look_up_fails_names_the_conflict() -> None:
    svc = Service()
    submit(svc, sent=body("rfnb-ours"))
    changed = body("rfnb-ours")
    changed["input"]["duration"] = 7

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/runs":
            raise httpx.ConnectError("down", request=request)
        return svc(request)

    with pytest.raises(NetworkError) as caught:
        submit(handler, sent=changed, max_retries=0)  # type: ignore[arg-type]
    assert str(caught.value).startswith("HTTP 409: CONFLICT: same Idempotency-Key with a different body; looking the "
                                        "run up by client_ref rfnb-ours then failed")


def test_a_409_is_resolved_to_our_run_not_another_caller_s_newer_one() -> None:
    mine = {"library": "runflow_nb/x", "experiment": "horses"}
    svc = Service()
    first = submit(svc, sent=body("rfnb-ours", metadata=mine))
    svc.runs.append(run_object("0193-theirs", "rfnb-ours", metadata={"experiment": "cats"},
                               created_at="2026-11-29T23:59:00Z"))
    changed = body("rfnb-ours", metadata=mine)
    changed["input"]["duration"] = 7
    assert submit(svc, sent=changed).id == first.id


def test_a_400_for_a_create_is_raised_at_once() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"code": "BAD_REQUEST", "message": "malformed"})

    out = Driven()
    with pytest.raises(APIError) as caught:
        submit(handler, out=out)  # type: ignore[arg-type]
    assert caught.value.status_code == 400 and len(out.sends) == 1


def test_a_create_refused_each_time_says_so_in_full_after_four_pauses() -> None:
    svc = Service(create_faults=("429",) * 5)
    out = Driven()
    with pytest.raises(RateLimitError) as caught:
        submit(svc, out=out)
    assert str(caught.value) == ("HTTP 429: RATE_LIMITED: slow down — the server refused the run each time, so it "
                                 "was not created")
    assert len(out.sleeps) == 4


def test_a_2xx_that_is_never_a_run_says_what_came_back() -> None:
    svc = Service(create_faults=("html",))

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/runs":
            return httpx.Response(200, json={"items": []})
        return svc(request)

    with pytest.raises(RunMayExistError) as caught:
        submit(handler, max_retries=0)  # type: ignore[arg-type]
    assert str(caught.value).startswith("HTTP 200: submitting the run: the server answered HTTP 200 with text/html, "
                                        "not a run object")


def test_a_put_that_keeps_failing_pauses_between_tries_only() -> None:
    svc = Service()
    svc.put_faults = [503] * 6
    out = Driven()
    with pytest.raises(ServerError):
        upload(svc, out=out)
    assert len(out.sleeps) == 4 and all(0 <= s <= 0.5 * 2**i for i, s in enumerate(out.sleeps))


def test_a_same_host_link_without_a_path_pages_the_run_list() -> None:
    seen = pages_followed(BASE, "https://api.runflow.test?pq=P5")
    assert seen[1].path == "/v1/runs" and seen[1].params["pq"] == "P5"


# -- batches: one create for many runs ------------------------------------------------------------

def sent_body(request: httpx.Request) -> Any:
    return httpx.Response(200, content=request.content).json()


BATCH = f"POST {BATCHES}"


def batch_body(refs: tuple[str, ...] = ("rfnb-b1", "rfnb-b2", "rfnb-b3"), metadata: Any = None) -> dict[str, Any]:
    return {"input": [{"prompt": "character1", "image_urls": ["https://img.test/a.png"], "seed": i, "client_ref": r}
                      for i, r in enumerate(refs)],
            "metadata": metadata if metadata is not None else {"library": "runflow_nb"}, "callback_url": None}


def submit_batch(svc: Any, *, out: Driven | None = None, sent: dict[str, Any] | None = None, **overrides: Any) -> Any:
    clock = Clock()
    proto = protocol(clock=clock, **overrides)
    return drive(proto.submit_batch(MODEL, sent or batch_body(), idempotency_key="batch-key-1"), svc, clock=clock,
                 out=out)


def test_a_batch_create_maps_each_client_ref_to_its_run() -> None:
    svc = Service()
    batch_id, runs = submit_batch(svc)
    assert svc.routes() == [BATCH] and svc.requests[0].headers["idempotency-key"] == "batch-key-1"
    assert sent_body(svc.requests[0]) == batch_body()
    assert batch_id == "0193-batch-1" and list(runs) == ["rfnb-b1", "rfnb-b2", "rfnb-b3"]
    assert [runs[r].id for r in runs] == [run["id"] for run in svc.created]
    assert all(run.status == "queued" and run.client_ref == ref for ref, run in runs.items())
    assert all(run.raw["batch_id"] == batch_id for run in runs.values())


def test_a_batch_created_then_500_is_looked_up_item_by_item_before_any_re_send() -> None:
    svc = Service(create_faults=("created-500",), honours_keys=True)
    out = Driven()
    batch_id, runs = submit_batch(svc, out=out)
    assert svc.routes() == [BATCH, LIST, LIST, LIST] and len(svc.created) == 3  # no probe, no second batch
    assert batch_id is None and {r: run.id for r, run in runs.items()} == {
        run["client_ref"]: run["id"] for run in svc.created}
    assert out.sleeps == []


def test_a_dropped_batch_answer_whose_runs_are_not_listed_is_never_posted_twice() -> None:
    svc = Service(create_faults=("created-drop",), honours_keys=True)
    with pytest.raises(RunMayExistError, match="the batch may have been created"):
        submit_batch(_unlisted(svc))
    assert svc.count(BATCH) == 1 and PROBE not in svc.routes() and len(svc.created) == 3


def test_a_dropped_batch_answer_without_key_support_is_looked_up_over_the_grace_period() -> None:
    svc = Service(create_faults=("created-drop",), honours_keys=False, hidden_lists=3)
    out = Driven()
    _, runs = submit_batch(svc, out=out)
    assert svc.routes()[0] == BATCH and BATCH not in svc.routes()[1:] and PROBE not in svc.routes()
    assert len(svc.created) == 3 and all(run is not None for run in runs.values())
    assert out.sleeps == [1.0]  # three look-ups hidden, then all three found after the first pause


def test_a_batch_answered_500_whose_runs_no_look_up_sees_is_never_posted_twice() -> None:
    svc = Service(create_faults=("500",))
    out = Driven()
    with pytest.raises(RunMayExistError):
        submit_batch(svc, out=out)
    assert svc.routes() == [BATCH] + [LIST] * 12 and not svc.created  # 3 items, looked up 4 times each
    assert out.sleeps == [1.0, 2.0, 4.0]


def test_a_batch_look_up_skips_another_caller_s_run_with_an_item_s_client_ref() -> None:
    theirs = run_object("0193-theirs", "rfnb-b2", metadata={"caller": "another process"},
                        created_at="2026-11-30T00:00:00Z")
    svc = Service(create_faults=("created-500",), others=[theirs])
    _, runs = submit_batch(svc)
    assert runs["rfnb-b2"].id != "0193-theirs" and len(svc.created) == 3


def test_a_409_for_a_batch_key_is_looked_up_and_never_re_sent() -> None:
    svc = Service()
    submit_batch(svc)
    changed = batch_body()
    changed["input"][0]["seed"] = 99
    out = Driven()
    batch_id, runs = submit_batch(svc, sent=changed, out=out)
    assert svc.routes()[1:] == [BATCH, LIST, LIST, LIST] and batch_id is None and len(svc.created) == 3
    assert all(run is not None for run in runs.values()) and out.sleeps == []


def test_a_422_for_a_batch_is_a_refusal_the_caller_can_tell_apart() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(422, json={"code": "BATCH_NOT_SUPPORTED", "message": "no batches", "errors": None})

    with pytest.raises(BatchRefused) as caught:
        submit_batch(handler)
    assert caught.value.unsupported and caught.value.status_code == 422 and caught.value.code == "BATCH_NOT_SUPPORTED"

    def item(request: httpx.Request) -> httpx.Response:
        return httpx.Response(422, json={"code": "VALIDATION", "message": "bad",
                                         "errors": [{"loc": ["input[1]", "duration"], "msg": "too long"}]})

    with pytest.raises(BatchRefused) as caught:
        submit_batch(item)
    assert not caught.value.unsupported


def test_a_2xx_that_is_not_a_batch_may_have_created_it_and_is_looked_up() -> None:
    svc = Service(create_faults=("html",), honours_keys=False)
    _, runs = submit_batch(svc)
    assert svc.routes() == [BATCH, LIST, LIST, LIST] and len(svc.created) == 3
    assert all(run is not None for run in runs.values())


def test_a_batch_answer_listing_only_some_items_leaves_the_rest_unknown() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, json={"id": "b1", "items": [
            {"run_id": "r1", "client_ref": "rfnb-b1", "status_code": "queued"},
            {"run_id": "rX", "client_ref": "someone-else"}, {"client_ref": "rfnb-b3"}]})

    batch_id, runs = submit_batch(handler)
    assert batch_id == "b1" and runs["rfnb-b1"].id == "r1" and runs["rfnb-b2"] is None and runs["rfnb-b3"] is None
    assert "someone-else" not in runs


def test_a_batch_that_never_answers_as_a_batch_says_what_came_back() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/runs":
            return httpx.Response(200, json={"items": []})
        return httpx.Response(200, headers={"content-type": "text/html; charset=utf-8", "x-request-id": "req-7"},
                              content=b"<html>portal</html>")

    out = Driven()
    with pytest.raises(RunMayExistError) as caught:
        submit_batch(handler, out=out, max_retries=1)
    assert str(caught.value).startswith("HTTP 200: submitting the batch: the server answered HTTP 200 with text/html, "
                                        "not a batch object (request id req-7)")
    assert isinstance(caught.value.__context__, BadAnswer) or "may have been created" in str(caught.value)
    assert out.sleeps == [1.0, 2.0, 4.0]  # looked up over the grace period, never POSTed twice

    def bare(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/runs":
            return httpx.Response(200, json={"items": []})
        return httpx.Response(200, content=b"[]")

    with pytest.raises(RunMayExistError, match="with no content type, not a batch object"):
        submit_batch(bare, max_retries=0)


def test_a_batch_answer_without_an_id_has_no_batch_id() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, json={"items": [{"run_id": "r1", "client_ref": "rfnb-b1"}]})

    batch_id, runs = submit_batch(handler)
    assert batch_id is None and runs["rfnb-b1"].id == "r1"


def test_a_batch_create_is_tried_at_most_five_times_with_pauses_between() -> None:
    svc = Service(create_faults=("429",) * 5)
    out = Driven()
    with pytest.raises(RateLimitError):
        submit_batch(svc, out=out)
    assert svc.routes() == [BATCH] * 5 and len(out.sleeps) == 4 and not svc.created
    assert out.sends[0].deadline == 1000.0 + 60.0


def test_a_batch_create_honours_retry_after() -> None:
    svc = Service(create_faults=("429:6",))
    out = Driven()
    submit_batch(svc, out=out)
    assert out.sleeps == [6.0] and svc.routes() == [BATCH, BATCH]


def test_a_batch_create_never_sent_names_the_batch() -> None:
    svc = Service(create_faults=("connect",))
    with pytest.raises(NetworkError) as caught:
        submit_batch(svc, max_retries=0)
    assert str(caught.value) == "submitting the batch: ConnectError: connection refused"


@pytest.mark.parametrize(("fault", "why"), [("created-500", "HTTP 500: INTERNAL: the create failed half-way"),
                                             ("409", "HTTP 409: CONFLICT: same Idempotency-Key")])
def test_a_failed_batch_look_up_names_why_it_looked(fault: str, why: str) -> None:
    svc = Service(create_faults=() if fault == "409" else (fault,))
    if fault == "409":
        submit_batch(svc)
    changed = batch_body()
    changed["input"][0]["seed"] = 42

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/runs":
            raise httpx.ConnectError("down", request=request)
        return svc(request)

    with pytest.raises(NetworkError) as caught:
        submit_batch(handler, sent=changed, max_retries=0)
    assert str(caught.value).startswith(f"{why}")
    assert "looking the batch's runs up by client_ref then failed" in str(caught.value)
    assert str(caught.value).endswith("they may have been created — look them up again before submitting anew")


def test_a_409_for_a_batch_looks_over_the_grace_period_and_skips_other_callers() -> None:
    svc = Service()
    submit_batch(svc, sent=batch_body(metadata={"library": "runflow_nb", "experiment": "e1"}))
    svc.runs.append(run_object("0193-theirs", "rfnb-b1", metadata={"caller": "another process"},
                               created_at="2026-11-30T00:00:00Z"))
    svc.hidden_lists = 0
    changed = batch_body(metadata={"library": "runflow_nb", "experiment": "e1"})
    changed["input"][0]["seed"] = 42
    listed = list(svc.runs)
    svc.runs = [listed[-1]]  # only the other caller's run is listed at first

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/runs" and svc.lists >= 1:
            svc.runs = listed  # ours show up for the second round of look-ups
        return svc(request)

    out = Driven()
    _, runs = submit_batch(handler, sent=changed, out=out)
    assert out.sleeps == [1.0] and runs["rfnb-b1"].id != "0193-theirs"
    assert all(run is not None for run in runs.values())


def test_a_400_for_a_batch_is_raised_at_once() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"code": "BAD_REQUEST", "message": "malformed"})

    out = Driven()
    with pytest.raises(APIError) as caught:
        submit_batch(handler, out=out)
    assert caught.value.status_code == 400 and not isinstance(caught.value, BatchRefused) and len(out.sends) == 1
