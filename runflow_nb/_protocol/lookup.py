"""Finding a run by its ``client_ref``: the look-up that decides whether a create whose answer was
lost may have made (and billed) a run. The server's filter is not trusted: items are filtered here
too, other callers' runs with the same ``client_ref`` are told apart by their echoed metadata, and
the newest listed run wins."""

from __future__ import annotations

import itertools
from collections.abc import Generator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ..errors import APIError, NetworkError, RunMayExistError
from ..runs import Run, parse_time
from .actions import Action, Outcome, Sleep
from .answers import BadAnswer, _json
from .calls import Calls

__all__ = ["DEEP_PAGES", "SKEW", "LookUp"]

#: Pages a look-up with a known send time may read back (of 100 runs each) before it gives up.
DEEP_PAGES = 50
#: How far the server's clock may be behind ours: a look-up reads back to this long before the send.
SKEW = timedelta(minutes=10)


class LookUp(Calls):
    """Look-ups by ``client_ref`` (:meth:`find`), alone or over a grace period after a lost answer."""

    def find(self, client_ref: str, *, max_pages: int = 5, metadata: dict[str, Any] | None = None,
             since: datetime | None = None) -> Generator[Action, Outcome, Run | None]:
        """The newest run with this ``client_ref``, or None: ``GET /v1/runs?q=client_ref:<v>``, and the
        items filtered here as well (a server may ignore the filter), the newest match of a page
        chosen by its ``created_at`` (a server may ignore ``sort_by``), paging through recent runs by
        either cursor spelling (``next_pq`` or ``next``, a token or a link).

        ``client_ref`` is not documented as unique: with ``metadata`` (what our create sent), a run
        whose echoed metadata lacks or contradicts it is another caller's and is skipped; a run
        whose metadata is not shown at all is taken (nothing tells it apart).

        With ``since`` (a moment before the create was sent), pages are read back until they reach
        runs created before it (up to :data:`DEEP_PAGES`), not only ``max_pages``: a server that
        ignores the filter lists every run of the account, and a busy account pushes ours down.
        """
        pages = max_pages if since is None else max(max_pages, DEEP_PAGES)
        value = client_ref if client_ref and not any(c.isspace() or c in '"|' for c in client_ref) else \
            '"' + client_ref.replace("\\", "\\\\").replace('"', '\\"') + '"'
        path, params = "/v1/runs", {"q": f"client_ref:{value}", "limit": 100, "sort_by": "created_at:desc"}
        seen: set[str] = set()
        unverified: Run | None = None
        for _ in range(pages):
            resp = yield from self.call("GET", path, params=params, what="looking up the run by client_ref")
            data = _json(resp)
            if not isinstance(data, (dict, list)):  # an HTML page is no proof the run does not exist
                raise BadAnswer(f"looking up the run by client_ref: HTTP {resp.status_code} is not a list of runs",
                                status_code=resp.status_code)
            items = data if isinstance(data, list) else next(
                (data[k] for k in ("items", "data", "runs", "results") if isinstance(data, dict)
                 and isinstance(data.get(k), list)), [])
            matches = [item for item in items
                       if isinstance(item, dict) and item.get("client_ref") == client_ref and item.get("id")]
            ours = [item for item in matches if _ours(item, metadata)]
            if ours:
                return Run.parse(_newest(ours))
            maybe = [item for item in matches if _ours(item, metadata) is None]
            if maybe and unverified is None:
                unverified = Run.parse(_newest(maybe))
            if since is not None and _reached(items, since):
                return unverified  # the list has gone back past the create: it is not there
            cursor = next((data.get(k) for k in ("next_pq", "next", "next_cursor") if isinstance(data, dict)
                           and isinstance(data.get(k), str) and data.get(k)), None)
            if not cursor or not items or cursor in seen:
                return unverified
            seen.add(cursor)
            page = self._next_page(cursor, params)
            if page is None:
                return unverified
            path, params = page
        return unverified

    def recent(self, *, since: datetime, max_pages: int = DEEP_PAGES) -> Generator[Action, Outcome, list[dict[str, Any]]]:
        """Every run the list shows created since ``since`` (newest first, paged by either cursor
        spelling, at most ``max_pages`` pages of 100): what a reconcile reads back."""
        path, params = "/v1/runs", {"limit": 100, "sort_by": "created_at:desc"}
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        for _ in range(max_pages):
            resp = yield from self.call("GET", path, params=params, what="reading the run list")
            data = _json(resp)
            if not isinstance(data, (dict, list)):
                raise BadAnswer(f"reading the run list: HTTP {resp.status_code} is not a list of runs",
                                status_code=resp.status_code)
            items = data if isinstance(data, list) else next(
                (data[k] for k in ("items", "data", "runs", "results") if isinstance(data.get(k), list)), [])
            out += [item for item in items if isinstance(item, dict) and item.get("id")]
            if _reached(items, since):
                break
            cursor = next((data.get(k) for k in ("next_pq", "next", "next_cursor") if isinstance(data, dict)
                           and isinstance(data.get(k), str) and data.get(k)), None)
            if not cursor or not items or cursor in seen:
                break
            seen.add(cursor)
            page = self._next_page(cursor, params)
            if page is None:
                break
            path, params = page
        return out

    def _next_page(self, cursor: str, params: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        """``(path, params)`` of the page a cursor names, or None: a bare token is sent as ``pq``; a
        link (path or same-origin URL) is followed with its own query; another host's link gives up
        only its ``pq`` (None without one: nothing to follow)."""
        if not cursor.startswith(("/", "http://", "https://")):
            return "/v1/runs", {**params, "pq": cursor}
        parts = urlsplit(cursor)
        query = dict(parse_qsl(parts.query))
        base = urlsplit(self.base_url)
        if parts.netloc and (parts.scheme, parts.netloc) != (base.scheme, base.netloc):
            return ("/v1/runs", {**params, "pq": query["pq"]}) if query.get("pq") else None
        path = parts.path
        if base.path and path.startswith(base.path + "/"):  # base_url holds no trailing slash
            path = path[len(base.path):]
        return path or "/v1/runs", {**params, **query}

    def look_up(self, client_ref: str, *, metadata: dict[str, Any] | None = None, grace: bool = False,
                since: datetime | None = None) -> Generator[Action, Outcome, Run | None]:
        """:meth:`find`, read again over the grace period (``grace``) while nothing is listed: a run
        created moments ago may not be listed yet."""
        waits = (0.0, *self.submit_grace_s) if grace else (0.0,)
        for wait in waits:
            if wait:
                yield Sleep(wait)
            found = yield from self.find(client_ref, metadata=metadata, since=since)
            if found is not None:
                return found
        return None

    def _find_after_lost_answer(self, client_ref: str, why: str, *, grace: bool,
                                metadata: dict[str, Any] | None = None, since: datetime | None = None
                                ) -> Generator[Action, Outcome, Run | None]:
        try:
            return (yield from self.look_up(client_ref, metadata=metadata, grace=grace, since=since))
        except (APIError, NetworkError) as exc:
            # The run may exist (and be billed): never report this as a refusal, or the
            # caller would submit it again under a new client_ref and pay twice.
            raise RunMayExistError(f"{why}; looking the run up by client_ref {client_ref} then failed ({exc}): "
                                   "it may have been created — look it up again before submitting anew",
                                   client_ref=client_ref) from exc

    def _find_items(self, refs: list[str], why: str, *, grace: bool, metadata: dict[str, Any] | None = None,
                    since: datetime | None = None) -> Generator[Action, Outcome, dict[str, Run | None]]:
        found: dict[str, Run | None] = dict.fromkeys(refs)
        waits = (0.0, *self.submit_grace_s) if grace else (0.0,)
        try:
            for wait in waits:
                if wait:
                    yield Sleep(wait)
                for ref in [r for r, run in found.items() if run is None]:
                    found[ref] = yield from self.find(ref, metadata=metadata, since=since)
                if all(run is not None for run in found.values()):
                    break
        except (APIError, NetworkError) as exc:
            raise RunMayExistError(f"{why}; looking the batch's runs up by client_ref then failed ({exc}): they "
                                   "may have been created — look them up again before submitting anew") from exc
        return found


def _reached(items: list[Any], since: datetime) -> bool:
    """Whether the pages have gone back past ``since``: this page lists runs newest first and its
    newest was created before it. A page in any other order (a server ignoring ``sort_by``) tells
    nothing, and paging goes on."""
    stamps = [parse_time(item.get("created_at")) for item in items if isinstance(item, dict)]
    known = [t for t in stamps if t is not None]
    if not known or len(known) != len(stamps):
        return False
    newest_first = all(a >= b for a, b in itertools.pairwise(known))
    return newest_first and known[0] < since


def _newest(items: list[dict[str, Any]]) -> dict[str, Any]:
    """The most recently created of ``items`` (a server may ignore ``sort_by``); on a tie, or
    without timestamps, the first listed."""
    stamps = [parse_time(item.get("created_at")) for item in items]
    known = [s for s in stamps if s is not None]
    if not known:
        return items[0]
    return items[stamps.index(max(known))]


def _ours(item: dict[str, Any], metadata: dict[str, Any] | None) -> bool | None:
    """Whether a listed run is the one our create made: True (its metadata echoes ours), False (it
    echoes other metadata), None (nothing to tell by: no metadata of ours, or none shown)."""
    theirs = item.get("metadata")
    if not metadata or not isinstance(theirs, dict):
        return None
    return all(k in theirs and theirs[k] == v for k, v in metadata.items())

