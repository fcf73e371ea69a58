"""Clip QA: every downloaded clip is decoded once with PyAV and checked for black and frozen
stretches, silent, clipped or missing audio, the wrong length, size or frame rate, and decode
errors; the service's NSFW flag is carried along.

Owns the streaming measurement (:mod:`.measure`), the verdict and its short text (:mod:`.verdict`),
checking a file or a store's clips again (:mod:`.check`) and the badge views draw on flagged
clips (:mod:`.badge`). Thresholds live with the other settings (:func:`runflow_nb.settings.qa_thresholds`).

May import: settings, specs, errors, ``media`` and ``store``. Never the sweep, views, widgets,
report or experiment (they call into it).
"""
