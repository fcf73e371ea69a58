"""The offline simulator: Runflow's run lifecycle in-process, with real MP4 clips.

Owns the job engine and its billing ledger (:mod:`.engine`), a simulated run's record
(:mod:`.runs`) and the clip renderers: reference-to-video, text- and image-to-video
(:mod:`.render`, :mod:`.scenes`, :mod:`.look`) and video-edit (:mod:`.render_edit`). Every clip it
makes is marked SIMULATED.

May import: specs, server_checks, the request's prompt rules, media, settings and errors. Never
the client, the store or anything that sweeps.
"""
