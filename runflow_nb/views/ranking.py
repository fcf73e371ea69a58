"""``exp.ranking()`` as researchers read it: a DataFrame (every column kept for code) that shows like
``exp.view()`` — the still, what varied, rating, favourite, wins/losses/ties and cost — instead of
every raw column of the table.

>>> ranked = exp.ranking()            # doctest: +SKIP
>>> ranked                            # the compact, sortable table   # doctest: +SKIP
>>> ranked.iloc[0]["run_id"]          # all columns are still there   # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from .. import study
from .tableview import TableView

__all__ = ["JUDGEMENT", "Ranking", "ranking_columns"]

JUDGEMENT = ("rating", "favourite", "wins", "losses", "ties", "cost_usd")
"""What a ranking rests on, after the parameters that varied."""


def ranking_columns(df: pd.DataFrame) -> list[str]:
    """The parameters that varied (prompt and seed when none did), then :data:`JUDGEMENT`."""
    varied = study.varying(df) or [c for c in ("prompt", "seed") if c in df.columns]
    return varied + [c for c in JUDGEMENT if c in df.columns]


class Ranking(pd.DataFrame):
    """Succeeded runs best first (:func:`runflow_nb.study.ranking`), shown compactly.

    Still a DataFrame with every column; anything derived from it (a filter, a column pick) is a
    plain DataFrame again.
    """

    @property
    def _constructor(self) -> Any:
        return pd.DataFrame

    def _compact(self) -> pd.DataFrame:
        frame = pd.DataFrame(self)
        out = frame[ranking_columns(frame)].copy()
        if "favourite" in out.columns:
            out["favourite"] = ["★" if v is True else "" for v in out["favourite"]]
        if "cost_usd" in out.columns:
            out["cost_usd"] = out["cost_usd"].round(2)
        if "run_id" in frame.columns:
            out["run"] = [str(r)[:8] for r in frame["run_id"]]
        return out

    def _repr_html_(self) -> str:
        frame = pd.DataFrame(self)
        view = TableView(frame, columns=ranking_columns(frame))
        return view._repr_html_()

    def __repr__(self) -> str:
        compact = self._compact()
        if compact.empty:
            return "Ranking: no succeeded runs yet"
        with pd.option_context("display.max_colwidth", 40, "display.width", 160):
            return compact.to_string(na_rep="")
