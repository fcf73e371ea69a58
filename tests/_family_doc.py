"""The Happy Horse family's documented limits, transcribed from the shared API page.

This is the tests' independent oracle: it is written from ``../shared/docs/runflow-api.md`` (the
reference-to-video table and "The family" table), never imported from ``runflow_nb.specs``, so a
wrong limit in the specs fails the client and the emulator alike. ``test_family.py`` checks that
the page still says what is transcribed here.
"""

from __future__ import annotations

from pathlib import Path

DOC_PAGE = Path(__file__).resolve().parents[1].parent / "shared" / "docs" / "runflow-api.md"

# Shared by the family (reference-to-video table): prompt ≤ 2500, duration 3–15 s, 720p/1080p,
# seed 0–2147483647, aspect 16:9, 9:16, 1:1, 4:3, 3:4.
PROMPT_MAX = 2500
DURATIONS = (3, 15)
RESOLUTIONS = ("720p", "1080p")
ASPECTS = ("16:9", "9:16", "1:1", "4:3", "3:4")
SEED_MAX = 2147483647

# reference-to-video's image_urls: "1–9 images; JPEG/JPG/PNG/WEBP; shortest side ≥ 400 px (720+ advised);
# "Max 10 MB each"" — MB read as 10,000,000 bytes (the stricter reading: never send what may be refused).
R2V_IMAGES = (1, 9)
R2V_FORMATS = ("JPEG", "PNG", "WEBP")
R2V_MIN_SIDE = 400
R2V_MAX_BYTES = 10 * 10**6

MODELS = {
    "r2v": "alibaba/happy-horse/reference-to-video",
    "t2v": "alibaba/happy-horse/text-to-video",
    "i2v": "alibaba/happy-horse/image-to-video",
    "edit": "alibaba/happy-horse/video-edit",
}
# "price 720p / 1080p", dollars per second.
PRICES = {"r2v": (0.14, 0.28), "t2v": (0.14, 0.28), "i2v": (0.14, 0.28), "edit": (0.28, 0.56)}
# "key inputs" per variant.
T2V_INPUTS = ("prompt", "aspect_ratio", "duration", "resolution", "seed")
I2V_INPUTS = ("image_url", "prompt", "duration", "resolution", "seed")  # prompt optional ("prompt?")
EDIT_INPUTS = ("video_url", "prompt", "reference_image_urls", "audio_setting")

# image_url (≥ 300 px, JPEG/PNG/BMP/WEBP, aspect 1:2.5–2.5:1)
I2V_MIN_SIDE = 300
I2V_FORMATS = ("JPEG", "PNG", "BMP", "WEBP")
I2V_ASPECT = (1 / 2.5, 2.5)

# video_url (MP4/MOV 3–60 s, ≤ 100 MB), prompt with @Image1…@Image5, reference_image_urls ≤ 5,
# audio_setting auto/origin. Asset uploads: size_bytes 1–52428800.
EDIT_FORMATS = ("MP4", "MOV")
EDIT_SECONDS = (3, 60)
EDIT_MAX_BYTES = 100 * 10**6  # "100 MB"; the smaller reading, as the client must not send more
UPLOAD_MAX_BYTES = 52428800
EDIT_MAX_REFS = 5
EDIT_TAGS = (1, 5)
AUDIO_SETTINGS = ("auto", "origin")

# Phrases of the page the transcription above rests on (checked verbatim).
PAGE_PHRASES = (
    "| text-to-video | alibaba/happy-horse/text-to-video | prompt, aspect_ratio, duration, resolution, seed | "
    "0.14 / 0.28 |",
    "image_url (≥ 300 px, JPEG/PNG/BMP/WEBP, aspect 1:2.5–2.5:1), prompt?, duration, resolution, seed | 0.14 / 0.28",
    "video_url (MP4/MOV 3–60 s, ≤ 100 MB), prompt with @Image1…@Image5, reference_image_urls ≤ 5, "
    "audio_setting auto/origin | 0.28 / 0.56",
    "| duration | int | 3–15 s | 5 |",
    '| image_urls | list, required | 1–9 images; JPEG/JPG/PNG/WEBP; shortest side ≥ 400 px (720+ advised); "Max 10 MB each" | — |',
    "| prompt | string, required | ≤ 2500 characters",
    '"size_bytes": 1–52428800',
)
