"""Reproducible reports: a parameterized notebook run with papermill, kept as HTML and ``.ipynb``.

Owns building a report (:mod:`.build`), its parameters (:mod:`.params`), the kernel it runs in
(:mod:`.kernel`), scrubbing secrets and inline media (:mod:`.scrub`) and its HTML export with the
media it shows (:mod:`.html`).

May import: the store, media, views, settings and errors. Nothing below imports it.
"""
