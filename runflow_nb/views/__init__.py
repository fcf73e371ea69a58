"""What a researcher sees in a notebook that is not a widget: inline video by reference with its
still (:mod:`.display`), the readable table (:mod:`.tableview`), HTML escaping that survives
MathJax (:mod:`.html`), a stored run that shows as its clip (:mod:`.record`), whether a live front
end is there to draw in (:mod:`.frontend`) and where that front end fetches a local clip from
(:mod:`.served`), and the experiment's table methods (:mod:`.experiment_table`, mixed into
``Experiment``).

May import: media, the store's paths, settings and errors. The library never imports views at
module level; widgets and reports do. :mod:`.experiment_table` sits at the experiment's level (like
:mod:`runflow_nb.followups.api`): only it reads the study, clip QA and follow-ups, and draws widgets,
each imported when called.
"""
