"""The prompt's rules, read the same way by the client and by the service side.

:mod:`runflow_nb.request` (the client's checks before anything is sent) and
:mod:`runflow_nb.server_checks` (what the simulator and the emulator refuse) both call these, so
a prompt the client lets through is never refused by the emulator for a rule the client does not
know, and the other way round.

>>> from runflow_nb.specs import REFERENCE_TO_VIDEO
>>> [i.message for i in tag_issues(REFERENCE_TO_VIDEO.tags, "character2 waves", n_images=1)]
['names character2 but only 1 image is given']
"""

from __future__ import annotations

from .errors import Issue
from .specs import TagRules

__all__ = ["prompt_issues", "tag_issues"]


def prompt_issues(prompt: str, *, required: bool = True) -> list[Issue]:
    """A required prompt must say something; every prompt must be valid UTF-8."""
    issues: list[Issue] = []
    if required and not prompt.strip():
        issues.append(Issue("prompt", "is empty", "describe the clip"))
    try:
        prompt.encode("utf-8")
    except UnicodeEncodeError:
        issues.append(Issue("prompt", "contains characters that are not valid UTF-8 (lone surrogates)",
                            "remove or replace them"))
    return issues


def tag_issues(tags: TagRules, prompt: str, *, n_images: int | None) -> list[Issue]:
    """Look-alike tags (``character01``, non-ASCII digits) are refused; with ``n_images`` known,
    every tag must name an image that is given (``characterN`` with N ≤ the number of images)."""
    first, last = tags.name(tags.first), tags.name(tags.last)
    issues = [Issue("prompt", f"{bad!r} is not an image tag: tags are {first} … {last} in plain digits, "
                              "without a leading zero", f"write e.g. {first}")
              for bad in sorted(set(tags.lookalikes(prompt)))]
    if n_images is None:
        return issues
    for n in sorted(set(tags.refs(prompt))):
        if n < tags.first or n > tags.last:
            issues.append(Issue("prompt", f"names {tags.name(n)}; tags run from {first} to {last}",
                                "renumber the tag to match an image"))
        elif n > n_images:
            issues.append(Issue("prompt", f"names {tags.name(n)} but only {n_images} image"
                                          f"{'s are' if n_images != 1 else ' is'} given",
                                f"add a {_ordinal(n)} reference image or change the tag"))
    return issues


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"
