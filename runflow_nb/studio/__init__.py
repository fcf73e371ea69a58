"""The studio's logic, apart from its widgets: the queue and history of runs in a store
(:mod:`.queue`), several seeds of one request as a small sweep (:mod:`.seeds`), word when a
background sweep ends (:mod:`.notify`), an experiment's run-end webhook URL, held in memory and
never stored (:mod:`.callbacks`), and the synced multi-clip compare's markup (:mod:`.synced`).

May import: the store, sweep (its background handles and status), plan, request, views, study,
settings and errors. Never widgets or experiment at module level (widgets sit above and call in).
"""
