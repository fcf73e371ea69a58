"""``rf.doctor()`` / ``runflow-nb doctor``: is everything ready before money is spent?

Checks, in order: the service answers (``GET /v1/health``), the key is accepted
(``GET /v1/auth/me``), the balance (``GET /v1/billing/balance``, a decimal string) against what a
clip costs, and the model's live input schema (``GET /v1/models/{owner}/{slug}`` → ``inputs[]``)
against the spec built into this toolkit: a new enum value, a changed limit, a new required input,
an input that went away, a changed default or price. Each finding says what to do. Without a key
(or with the simulator backend) the report says it is offline and checks nothing remote.

>>> report = doctor()                                                       # doctest: +SKIP
>>> print(report)                                                           # doctest: +SKIP
runflow-nb doctor: https://api.runflow.io, model alibaba/happy-horse/reference-to-video
  ok    health   the service answers
  ...
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from . import settings
from .errors import (
    APIError,
    AuthenticationError,
    ConfigurationError,
    Issue,
    NetworkError,
    UsageError,
    ValidationError,
)
from .specs import FieldSpec, ModelSpec, get_spec

__all__ = ["Check", "DoctorReport", "compare_inputs", "doctor"]

_LEVELS = ("ok", "info", "warn", "fail", "skip")


@dataclass(frozen=True)
class Check:
    """One line of the report: ``level`` is ok, info, warn, fail or skip; ``fix`` says what to do."""

    name: str
    level: str
    message: str
    fix: str = ""


@dataclass
class DoctorReport:
    """What :func:`doctor` found. ``ok`` is False when any check failed; ``offline`` when nothing remote ran.

    >>> DoctorReport(base_url="http://x", model="m", offline=True).ok
    True
    """

    base_url: str
    model: str
    offline: bool = False
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(c.level == "fail" for c in self.checks)

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if c.level == "warn"]

    def add(self, name: str, level: str, message: str, fix: str = "") -> None:
        assert level in _LEVELS, level
        self.checks.append(Check(name, level, message, fix))

    def verdict(self) -> str:
        if self.offline:
            return "offline: nothing was checked against the service (runs use the simulator and bill nothing)"
        fails = [c for c in self.checks if c.level == "fail"]
        if fails:
            return f"NOT READY: {len(fails)} problem{'s' if len(fails) != 1 else ''} to fix before spending money"
        if self.warnings:
            return f"ready, with {len(self.warnings)} warning{'s' if len(self.warnings) != 1 else ''} to read"
        return "ready: key, balance and the model's inputs check out"

    def __str__(self) -> str:
        lines = [f"runflow-nb doctor: {self.base_url}, model {self.model}"]
        for c in self.checks:
            tag = c.level.upper() if c.level == "fail" else c.level
            first, *rest = c.message.split("\n")
            lines.append(f"  {tag:<5} {c.name:<8} {first}")
            lines += [f"                 {more}" for more in rest]
            if c.fix:
                lines.append(f"                 → {c.fix}")
        lines.append(self.verdict())
        return "\n".join(lines)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:  # IPython shows the text report
        p.text(str(self))

    def to_dict(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "model": self.model, "offline": self.offline, "ok": self.ok,
                "verdict": self.verdict(),
                "checks": [{"name": c.name, "level": c.level, "message": c.message, "fix": c.fix}
                           for c in self.checks]}


def _usd(value: float | Decimal) -> str:
    """Money as text that survives MathJax (no dollar signs)."""
    return f"USD {Decimal(str(value)).quantize(Decimal('0.01'))}"


def doctor(*, model: str = "alibaba/happy-horse/reference-to-video", client: Any = None,
           api_key: str | None = None, base_url: str | None = None) -> DoctorReport:
    """Check key, balance, service health and the model's live inputs; returns a readable report.

    Pass a :class:`~runflow_nb.Client` to check exactly the one a study uses; otherwise one is made
    from ``api_key``/``base_url`` or the ``RUNFLOW_*`` settings. Never raises for what it finds.
    """
    from .client import Client

    try:
        spec = get_spec(model)
    except KeyError as exc:
        raise ValidationError([Issue("model", str(exc.args[0]), "pass a model id or alias the toolkit knows")]) from None
    if client is not None and not isinstance(client, Client):
        raise UsageError(f"client is {type(client).__name__}: pass a runflow_nb.Client, or None to make one "
                         "from the RUNFLOW_* settings")
    own = client is None
    if client is None:
        client = Client(api_key=api_key, base_url=base_url, max_retries=1)
    try:
        try:
            backend, url = client.backend, client.base_url
        except ConfigurationError as exc:
            report = DoctorReport(base_url=base_url or "?", model=spec.model)
            report.add("settings", "fail", str(exc), "fix the RUNFLOW_* settings (runflow-nb config shows them)")
            return report
        report = DoctorReport(base_url=url, model=spec.model)
        if backend == "simulator":
            report.offline = True
            why = ("no API key (RUNFLOW_API_KEY is unset)" if not settings.has_api_key(api_key)
                   else "the simulator backend was chosen")
            report.add("backend", "info", f"offline: {why}; runs use the local simulator and bill nothing",
                       "set RUNFLOW_API_KEY (and leave RUNFLOW_BACKEND unset or 'runflow') to check the service")
            return report
        _check_remote(report, client, spec)
        return report
    finally:
        if own:
            client.close()


def _check_remote(report: DoctorReport, client: Any, spec: ModelSpec) -> None:
    t0 = time.monotonic()
    try:
        health = client._read("/v1/health", auth=False)
    except NetworkError as exc:
        report.offline = True
        report.add("health", "fail", f"cannot reach {report.base_url}: {exc}",
                   "check the network / RUNFLOW_BASE_URL; until then the service cannot be used")
        return
    except APIError as exc:
        report.add("health", "warn", f"the health check answered HTTP {exc.status_code}: {exc.message}",
                   "the service may be degraded; try again shortly")
    else:
        status = health.get("status") if isinstance(health, dict) else None
        level = "ok" if status in ("ok", "healthy", "pass") else "warn"
        report.add("health", level, f"the service answers (status {status!r}, "
                                    f"{(time.monotonic() - t0) * 1000:.0f} ms)",
                   "" if level == "ok" else "the service reports trouble; runs may queue or fail")
    try:
        me = client._read("/v1/auth/me")
    except AuthenticationError as exc:
        report.add("key", "fail", f"the API key was refused (HTTP {exc.status_code}: {exc.message})",
                   "create a key in the Runflow dashboard and set RUNFLOW_API_KEY to it")
        return
    except (APIError, NetworkError) as exc:
        report.add("key", "warn", f"could not confirm the key: {exc}", "run doctor again")
    else:
        who = next((str(me[k]) for k in ("email", "name", "id") if isinstance(me, dict) and me.get(k)), "")
        org = me.get("organization_id") or me.get("org_id") if isinstance(me, dict) else None
        report.add("key", "ok", "accepted" + (f" ({who}" + (f", org {org})" if org else ")") if who else ""))
    _check_balance(report, client, spec)
    _check_model(report, client, spec)


def _check_balance(report: DoctorReport, client: Any, spec: ModelSpec) -> None:
    try:
        data = client._read("/v1/billing/balance")
    except AuthenticationError as exc:  # 401/403: the key is refused here, so every run would be too
        report.add("balance", "fail", f"the balance was refused (HTTP {exc.status_code}: {exc.message}): the key "
                                      "cannot read this account's billing",
                   "use a key of the account (or organization) that pays for runs; set RUNFLOW_API_KEY to it")
        return
    except (APIError, NetworkError) as exc:
        report.add("balance", "warn", f"could not read the balance: {exc}", "check it in the dashboard")
        return
    balance = _decimal(data.get("balance") if isinstance(data, dict) else None)
    if balance is None:
        shown = data.get("balance") if isinstance(data, dict) else data
        report.add("balance", "warn", f"the balance answer holds no readable amount ({str(shown)[:80]!r} is not a "
                                      "plain decimal number)", "check the balance in the dashboard before a sweep")
        return
    default = spec.defaults
    duration = default.get("duration") or 5
    resolution = default.get("resolution") or next(iter(spec.price_per_second))
    clip = Decimal(str(spec.price_usd(duration=duration, resolution=resolution)))
    clips = int(balance // clip) if clip > 0 else 0
    msg = f"{_usd(balance)} left: about {clips} clip{'s' if clips != 1 else ''} of {duration} s at {resolution}"
    low = _decimal(data.get("low_balance_threshold"))
    if balance < clip:
        report.add("balance", "fail", msg, "add credit: a run is refused (402 INSUFFICIENT_CREDIT) without it")
    elif low is not None and balance <= low:
        report.add("balance", "warn", f"{msg} (below the account's low-balance mark of {_usd(low)})",
                   "add credit before a large sweep; pass budget_usd to cap it")
    else:
        report.add("balance", "ok", msg)


def _decimal(value: Any) -> Decimal | None:
    """A finite amount of money below a trillion from a decimal string or number, else None
    ("NaN", "Infinity", "1e30", garbage and booleans are not balances)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        return None
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() and abs(amount) < Decimal("1e12") else None


def _check_model(report: DoctorReport, client: Any, spec: ModelSpec) -> None:
    try:
        page = client._read("/v1/models/" + "/".join(_quote(s) for s in spec.model.split("/")))
    except AuthenticationError as exc:  # 403: this key may not use the model; 401: refused outright
        report.add("model", "fail", f"the model page was refused (HTTP {exc.status_code}: {exc.message}): this key "
                                    f"cannot use {spec.model}",
                   "enable the model for the account (or use a key that can run it); every run would be refused")
        return
    except (APIError, NetworkError) as exc:
        report.add("model", "warn", f"could not read the model page: {exc}",
                   "the built-in spec will be used unchecked")
        return
    inputs = page.get("inputs") if isinstance(page, dict) else None
    if not isinstance(inputs, list):
        report.add("model", "warn", "the model page lists no inputs[]", "the built-in spec will be used unchecked")
        return
    findings = compare_inputs(spec, inputs)
    price = _price_findings(spec, page.get("pricing_note"))
    findings += price
    if not findings:
        report.add("model", "ok", f"the live inputs match the built-in spec ({len(inputs)} inputs)")
    for level, message, fix in findings:
        report.add("model", level, message, fix)


def _quote(segment: str) -> str:
    from urllib.parse import quote

    return quote(segment, safe="")


# --- comparing the live schema with the spec ------------------------------------------------------


def _attr(attrs: dict[str, Any], *names: str) -> Any:
    for n in names:
        if n in attrs and attrs[n] is not None:
            return attrs[n]
    return None


def _attrs(entry: dict[str, Any]) -> dict[str, Any]:
    got = entry.get("validator_attrs")
    return got if isinstance(got, dict) else {}


def _options(entry: dict[str, Any]) -> list[Any] | None:
    attrs = _attrs(entry)
    got = _attr(attrs, "options", "choices", "enum", "values", "allowed", "allowed_values")
    if got is None:
        got = _attr(entry, "options", "choices", "enum")
    if isinstance(got, list):
        return [o.get("value", o) if isinstance(o, dict) else o for o in got]
    return None


_UPDATE = "update runflow_nb (pip install -U runflow_nb); until then"


def compare_inputs(spec: ModelSpec, inputs: list[Any]) -> list[tuple[str, str, str]]:
    """``(level, message, fix)`` for every difference between the live ``inputs[]`` and ``spec``."""
    out: list[tuple[str, str, str]] = []
    live = {e["name"]: e for e in inputs if isinstance(e, dict) and isinstance(e.get("name"), str)}
    media = {spec.images.field} if spec.has_images else set()
    if spec.video is not None:
        media.add(spec.video.field)
    fields = {f.name: f for f in spec.fields}
    for name, entry in live.items():
        if name in fields or name in media:
            continue
        default = entry.get("default_value")
        if entry.get("is_required"):
            out.append(("fail", f"new required input {name!r} ({entry.get('variable_type_code') or 'type ?'}) "
                                "that this toolkit does not send: every run would be refused",
                        f"{_UPDATE} runs of {spec.model} cannot succeed"))
        else:
            out.append(("info", f"new optional input {name!r} (default {default!r}) not offered by this toolkit",
                        "nothing to do: the service uses its default"))
    for name, f in fields.items():
        found = live.get(name)
        if found is None:
            out.append(("warn", f"input {name!r} is no longer listed on the model page",
                        f"requests that set {name} may be refused; {_UPDATE} leave {name} at its default"))
            continue
        out += _compare_field(f, found)
    if spec.has_images and spec.images.field in live:
        out += _compare_images(spec, live[spec.images.field])
    return out


def _compare_field(f: FieldSpec, entry: dict[str, Any]) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    name = f.name
    required = bool(entry.get("is_required"))
    if required and not f.required:
        out.append(("fail", f"{name!r} is now required (the toolkit treats it as optional)",
                    f"always pass {name}=... explicitly; {_UPDATE} a run without it is refused"))
    elif f.required and not required:
        out.append(("info", f"{name!r} is now optional", "nothing to do"))
    options = _options(entry)
    if f.choices and options is not None:
        new = [o for o in options if o not in f.choices]
        gone = [c for c in f.choices if c not in options]
        if new:
            out.append(("warn", f"{name}: new value{'s' if len(new) > 1 else ''} {', '.join(map(repr, new))} "
                                f"(the toolkit accepts {', '.join(map(repr, f.choices))})",
                        f"{_UPDATE} the new value is refused before sending"))
        if gone:
            out.append(("fail", f"{name}: {', '.join(map(repr, gone))} no longer accepted by the service",
                        f"do not use {name}={gone[0]!r}: such runs are refused"))
    attrs = _attrs(entry)
    lo = _attr(attrs, "min", "minimum", "ge", "gte", "min_value")
    hi = _attr(attrs, "max", "maximum", "le", "lte", "max_value")
    for label, live_v, ours, narrower in (("minimum", lo, f.minimum, lambda a, b: a > b),
                                          ("maximum", hi, f.maximum, lambda a, b: a < b)):
        if live_v is None or ours is None or not isinstance(live_v, (int, float)) or live_v == ours:
            continue
        if narrower(live_v, ours):
            out.append(("fail", f"{name}: the {label} is now {live_v:g} (the toolkit allows {ours:g})",
                        f"keep {name} within the live limit: values outside it are refused and the plan's "
                        "estimate is wrong"))
        else:
            out.append(("warn", f"{name}: the {label} is now {live_v:g} (the toolkit allows {ours:g})",
                        f"{_UPDATE} the wider range is refused before sending"))
    longest = _attr(attrs, "max_length", "maxLength") if f.type is str else None
    if longest is None and f.type is str and entry.get("validator_code") == "max_length":
        longest = _attr(attrs, "max")
    if isinstance(longest, int) and f.max_length is not None and longest != f.max_length:
        level = "fail" if longest < f.max_length else "warn"
        out.append((level, f"{name}: at most {longest} characters now (the toolkit allows {f.max_length})",
                    f"keep {name} under {min(longest, f.max_length)} characters"))
    live_default = entry.get("default_value")
    if "default_value" in entry and live_default is not None and not f.required and live_default != f.default:
        out.append(("info", f"{name}: the service's default is now {live_default!r} (the toolkit's is {f.default!r})",
                    f"nothing to do: the toolkit always sends {name} explicitly"))
    return out


def _compare_images(spec: ModelSpec, entry: dict[str, Any]) -> list[tuple[str, str, str]]:
    rules, out = spec.images, []
    attrs = _attrs(entry)
    checks = (("max_items", ("max_items", "maxItems", "max_count", "max"), rules.max_count, "images at most"),
              ("min_items", ("min_items", "minItems", "min_count", "min"), rules.min_count, "images at least"),
              ("min_short_side", ("min_short_side", "min_side", "min_dimension"), rules.min_short_side,
               "px on the shortest side at least"),
              ("max_bytes", ("max_bytes", "max_size_bytes", "max_file_size"), rules.max_bytes, "bytes per image at most"))
    for _key, names, ours, what in checks:
        live_v = _attr(attrs, *names)
        if not isinstance(live_v, (int, float)) or live_v == ours:
            continue
        stricter = live_v < ours if "at most" in what else live_v > ours
        out.append(("fail" if stricter else "warn", f"{rules.field}: {what} {live_v:g} now (the toolkit: {ours:g})",
                    "keep references within the live limit" if stricter
                    else f"{_UPDATE} the toolkit is stricter than the service"))
    return out


_PRICE = re.compile(r"\$?\s*(\d+(?:\.\d+)?)\s*(?:USD\s*)?(?:/|per)\s*s(?:ec(?:ond)?)?\b[^$\d]*?(\d{3,4}p)", re.I)
#: The docs' own way of writing the price of the higher resolution: "resolution: $0.28/second".
_RESOLUTION_PRICE = re.compile(r"\bresolution\s*[:=]\s*\$?\s*(\d+(?:\.\d+)?)\s*(?:USD\s*)?(?:/|per)\s*s(?:ec(?:ond)?)?\b",
                               re.I)


def _price_findings(spec: ModelSpec, note: Any) -> list[tuple[str, str, str]]:
    if not isinstance(note, str):
        return []
    out = []
    found = list(_PRICE.findall(note))
    if spec.price_per_second:
        top = max(spec.price_per_second, key=lambda r: spec.price_per_second[r])  # 1080p: what "resolution" adds
        found += [(amount, top) for amount in _RESOLUTION_PRICE.findall(note)]
    for amount, resolution in dict.fromkeys(found):
        ours = spec.price_per_second.get(resolution.lower())
        if ours is not None and abs(float(amount) - ours) > 1e-9:
            out.append(("warn", f"price at {resolution}: {_usd(float(amount))}/s on the model page, "
                                f"{_usd(ours)}/s in the toolkit's estimates",
                        "estimates and budgets use the toolkit's price: allow for the difference, or update"))
    return out
