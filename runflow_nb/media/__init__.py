"""Video files and where they live: hashed downloads, probing and poster frames (:mod:`.probe`),
the artifacts store, a local folder or fsspec (:mod:`.artifacts`), a billed run's video fetched and
committed (:mod:`.fetch`) and video-edit's input clips (:mod:`.video_input`).

May import: settings, errors and the file helpers. Nothing here knows about runs or sweeps.
"""
