"""Follow-ups on a stored run: from a row back to its request, and the runs that grow from it.

Owns turning a stored run into the :class:`~runflow_nb.request.VideoRequest` that made it
(:mod:`.rebuild`), the Python that rebuilds that request (:mod:`.code`), re-runs, sweeps around one
clip and upscales with their lineage (:mod:`.rerun`, :mod:`.changes`), never paying again for a
request the experiment already holds (:mod:`.reuse`), one run's detail view as
HTML (:mod:`.detail`) and as shell text (:mod:`.shell`), video-edit requests for a finished clip
(:mod:`.lineage`), the steps the experiment's methods delegate to (:mod:`.steps`), and those
methods themselves (:mod:`.api`, mixed into ``Experiment``).

May import: the request and plan, specs, ``store``, ``media``, ``views``, ``study``, settings and
errors. Never ``experiment``, ``report`` or ``cli`` (they sit above and call in here); ``widgets``
only from :mod:`.api`, which sits at the experiment's level and draws the detail view's widget.
"""
