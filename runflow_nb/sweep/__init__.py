"""Sweeps: running a plan's runs with bounded concurrency, a budget, leases and resume.

Owns the runner (:mod:`.runner`), how runs end and are recorded (:mod:`.recording`), batches
(:mod:`.batches`) and lost batches (:mod:`.lost_batches`), run leases (:mod:`.leases`), the budget
guard (:mod:`.budget`), progress and summaries (:mod:`.status`), sweeps off the caller's thread
(:mod:`.background`), and reconciling an experiment with the server's run list (:mod:`.reconcile`,
``exp.reconcile()`` through :mod:`.reconciling`).

May import: the client, ``_protocol``, ``store``, ``media``, the request and plan, specs, settings,
errors and ``views.html`` (the escaping every HTML output shares). Never ``experiment``, the rest of
``views``, ``widgets``, ``report`` or ``cli`` (they sit above).
"""
