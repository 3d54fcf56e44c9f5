"""Pictures and video clips of the `mini_use` sound sources.

Every class has its own icon (drawn with PIL primitives) and base hue; a clip's
picture varies the icon's position, size, hue (within the class's hue band),
saturation and the background (colour and style, not class specific). The video
of a clip animates that picture: icon scale and brightness follow the clip's
loudness envelope, so the frames move with the sound as a sounding object would.

Colour hold-out: the hue offset inside the class band is driven by a colour
coordinate drawn like the audio variant coordinate (train/valid from
``[0, 0.4) U [0.6, 1]``, test from ``[0.4, 0.6)``), so test pictures use hue
offsets never seen in training.

Videos are H.264 (libx264, yuv420p) in mp4, encoded single-threaded at a
constant QP: the bytes depend only on the frames (checked by the corpus tests).
"""
import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence, Tuple

import av
import numpy as np
from PIL import Image, ImageDraw

RGB = Tuple[int, int, int]
# (draw, cx, cy, r, fg, accent, bg) -> None; draws an icon fitting a circle of radius r.
IconFn = Callable[[ImageDraw.ImageDraw, float, float, float, RGB, RGB, RGB], None]

# Determinism: with rate control (crf, mb-tree, adaptive quantisation) libx264's
# output was measured to depend on what the process encoded before (2-9 of ~50
# clips differed between runs); constant QP with those tools off was bit-exact in
# every trial. One thread keeps the option string that x264 writes into the
# stream independent of the machine's core count.
VIDEO_CODEC = "libx264"
VIDEO_OPTIONS: Dict[str, str] = {"qp": "20", "preset": "veryfast", "threads": "1", "x264-params": "aq-mode=0:mbtree=0"}
HUE_BAND = 0.05  # width of a class's hue band (of the colour wheel)
BACKGROUND_STYLES = ("solid", "vertical", "horizontal", "stripes")


@dataclass(frozen=True)
class PictureParams:
    """Random look of one clip's picture.

    Args:
        cx, cy: icon centre in [0, 1] of the image width/height.
        radius: icon radius as a fraction of the image size.
        hue, sat, val: HSV of the icon colour (hue in [0, 1)).
        bg_hue, bg_sat, bg_val: HSV of the background colour.
        bg_style: one of BACKGROUND_STYLES.
    """

    cx: float
    cy: float
    radius: float
    hue: float
    sat: float
    val: float
    bg_hue: float
    bg_sat: float
    bg_val: float
    bg_style: str


def draw_picture_params(rng: np.random.Generator, class_index: int, num_classes: int, colour_u: float) -> PictureParams:
    """Draw the picture look of one clip.

    Args:
        rng: random generator of the clip.
        class_index: index of the class (its base hue is class_index / num_classes).
        num_classes: number of classes.
        colour_u: colour coordinate in [0, 1] (hold-out split as the audio variant).

    Returns:
        The picture parameters.
    """
    radius = rng.uniform(0.22, 0.34)
    # Keep the icon inside the frame even at the largest animation scale (1.15).
    margin = radius * 1.15
    return PictureParams(
        cx=float(rng.uniform(margin, 1.0 - margin)),
        cy=float(rng.uniform(margin, 1.0 - margin)),
        radius=float(radius),
        hue=float((class_index / num_classes + (colour_u - 0.5) * HUE_BAND) % 1.0),
        sat=float(rng.uniform(0.65, 0.95)),
        val=float(rng.uniform(0.8, 1.0)),
        bg_hue=float(rng.uniform(0.0, 1.0)),
        bg_sat=float(rng.uniform(0.0, 0.25)),
        bg_val=float(rng.uniform(0.1, 0.45)),
        bg_style=str(BACKGROUND_STYLES[int(rng.integers(len(BACKGROUND_STYLES)))]),
    )


def _hsv(h: float, s: float, v: float) -> RGB:
    """HSV in [0, 1] to an 8-bit RGB tuple."""
    i = int(h * 6.0) % 6
    f = h * 6.0 - math.floor(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    r, g, b = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return int(round(r * 255)), int(round(g * 255)), int(round(b * 255))


def _background(size: int, p: PictureParams) -> Image.Image:
    """The background image: a flat colour, a gradient or stripes."""
    base = np.array(_hsv(p.bg_hue, p.bg_sat, p.bg_val), dtype=np.float32)
    ramp = np.linspace(0.6, 1.4, size, dtype=np.float32)
    if p.bg_style == "vertical":
        shade = np.repeat(ramp[:, None], size, axis=1)  # [H, W]
    elif p.bg_style == "horizontal":
        shade = np.repeat(ramp[None, :], size, axis=0)  # [H, W]
    elif p.bg_style == "stripes":
        rows = (np.arange(size) // max(1, size // 8)) % 2
        shade = np.repeat((0.8 + 0.4 * rows.astype(np.float32))[:, None], size, axis=1)  # [H, W]
    else:
        shade = np.ones((size, size), dtype=np.float32)  # [H, W]
    img = np.clip(shade[:, :, None] * base[None, None, :], 0, 255).astype(np.uint8)  # [H, W, 3]
    return Image.fromarray(img)


# ----------------------------------------------------------------------------
# Icons: coordinates are in units of the icon radius around (cx, cy).
# ----------------------------------------------------------------------------
def _pts(cx: float, cy: float, r: float, xy: Sequence[Tuple[float, float]]) -> List[Tuple[float, float]]:
    return [(cx + x * r, cy + y * r) for x, y in xy]


def _box(cx: float, cy: float, r: float, x0: float, y0: float, x1: float, y1: float) -> List[float]:
    return [cx + x0 * r, cy + y0 * r, cx + x1 * r, cy + y1 * r]


def _w(r: float, f: float) -> int:
    """Line width: a fraction of the radius, at least one pixel."""
    return max(1, int(round(f * r)))


def icon_harmonic_tone(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, fg: RGB, ac: RGB, bg: RGB) -> None:
    """A music note."""
    d.ellipse(_box(cx, cy, r, -0.62, 0.3, -0.02, 0.78), fill=fg)
    d.line(_pts(cx, cy, r, [(-0.06, 0.55), (-0.06, -0.85)]), fill=fg, width=_w(r, 0.14))
    d.polygon(_pts(cx, cy, r, [(-0.06, -0.9), (0.6, -0.5), (0.55, -0.25), (-0.06, -0.55)]), fill=ac)


def icon_chirp(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, fg: RGB, ac: RGB, bg: RGB) -> None:
    """A rising sweep curve with an arrow head."""
    xs = np.linspace(-0.9, 0.6, 16)
    ys = 0.7 - 1.4 * (np.exp(2.5 * (xs + 0.9) / 1.5) - 1) / (np.exp(2.5) - 1)
    d.line(_pts(cx, cy, r, list(zip(xs, ys))), fill=fg, width=_w(r, 0.16))
    d.polygon(_pts(cx, cy, r, [(0.95, -0.85), (0.35, -0.75), (0.75, -0.3)]), fill=ac)


def icon_siren(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, fg: RGB, ac: RGB, bg: RGB) -> None:
    """A rotating beacon: dome on a base, with rays."""
    d.pieslice(_box(cx, cy, r, -0.6, -0.45, 0.6, 0.75), 180, 360, fill=fg)
    d.rectangle(_box(cx, cy, r, -0.12, -0.35, 0.12, 0.15), fill=ac)
    d.rectangle(_box(cx, cy, r, -0.8, 0.15, 0.8, 0.45), fill=ac)
    for x0, y0, x1, y1 in [(-0.95, -0.55, -0.7, -0.35), (0.0, -0.95, 0.0, -0.65), (0.95, -0.55, 0.7, -0.35)]:
        d.line(_pts(cx, cy, r, [(x0, y0), (x1, y1)]), fill=fg, width=_w(r, 0.1))


def icon_noise_burst(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, fg: RGB, ac: RGB, bg: RGB) -> None:
    """A jagged starburst."""
    pts = []
    for k in range(24):
        ang = 2 * math.pi * k / 24
        rad = 1.0 if k % 2 == 0 else 0.5
        pts.append((rad * math.cos(ang), rad * math.sin(ang)))
    d.polygon(_pts(cx, cy, r, pts), fill=fg)
    d.ellipse(_box(cx, cy, r, -0.3, -0.3, 0.3, 0.3), fill=ac)


def icon_click_train(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, fg: RGB, ac: RGB, bg: RGB) -> None:
    """A row of short bars (a click train on an oscilloscope)."""
    d.line(_pts(cx, cy, r, [(-0.95, 0.5), (0.95, 0.5)]), fill=ac, width=_w(r, 0.08))
    for x in np.linspace(-0.8, 0.8, 5):
        d.rectangle(_box(cx, cy, r, x - 0.09, -0.7, x + 0.09, 0.5), fill=fg)


def icon_bell(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, fg: RGB, ac: RGB, bg: RGB) -> None:
    """A church bell with its clapper."""
    d.ellipse(_box(cx, cy, r, -0.4, -0.9, 0.4, -0.45), fill=fg)
    d.polygon(_pts(cx, cy, r, [(-0.4, -0.65), (0.4, -0.65), (0.5, 0.1), (0.85, 0.55), (-0.85, 0.55), (-0.5, 0.1)]), fill=fg)
    d.ellipse(_box(cx, cy, r, -0.18, 0.5, 0.18, 0.86), fill=ac)


def icon_drum(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, fg: RGB, ac: RGB, bg: RGB) -> None:
    """A drum with two sticks."""
    d.rectangle(_box(cx, cy, r, -0.75, -0.2, 0.75, 0.65), fill=fg)
    d.ellipse(_box(cx, cy, r, -0.75, 0.4, 0.75, 0.9), fill=fg)
    d.ellipse(_box(cx, cy, r, -0.75, -0.45, 0.75, 0.05), fill=ac)
    d.line(_pts(cx, cy, r, [(-0.9, -0.95), (0.1, -0.25)]), fill=ac, width=_w(r, 0.1))
    d.line(_pts(cx, cy, r, [(0.9, -0.95), (-0.1, -0.25)]), fill=ac, width=_w(r, 0.1))


def icon_babble(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, fg: RGB, ac: RGB, bg: RGB) -> None:
    """Two overlapping speech bubbles."""
    d.ellipse(_box(cx, cy, r, -0.95, -0.85, 0.35, 0.1), fill=fg)
    d.polygon(_pts(cx, cy, r, [(-0.7, -0.1), (-0.4, 0.0), (-0.85, 0.35)]), fill=fg)
    d.ellipse(_box(cx, cy, r, -0.25, -0.15, 0.95, 0.7), fill=ac)
    d.polygon(_pts(cx, cy, r, [(0.45, 0.6), (0.75, 0.5), (0.8, 0.95)]), fill=ac)


def icon_rain(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, fg: RGB, ac: RGB, bg: RGB) -> None:
    """A cloud with falling drops."""
    for box in [(-0.85, -0.45, -0.15, 0.15), (-0.45, -0.85, 0.35, -0.05), (0.05, -0.55, 0.85, 0.15)]:
        d.ellipse(_box(cx, cy, r, *box), fill=fg)
    d.rectangle(_box(cx, cy, r, -0.55, -0.3, 0.55, 0.15), fill=fg)
    for x in (-0.55, -0.1, 0.35, 0.8):
        d.line(_pts(cx, cy, r, [(x, 0.35), (x - 0.2, 0.9)]), fill=ac, width=_w(r, 0.1))


def icon_engine(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, fg: RGB, ac: RGB, bg: RGB) -> None:
    """A gear wheel."""
    for k in range(8):
        ang = 2 * math.pi * k / 8
        ca, sa = math.cos(ang), math.sin(ang)
        tooth = [(-0.18, 0.55), (0.18, 0.55), (0.14, 0.95), (-0.14, 0.95)]
        d.polygon(_pts(cx, cy, r, [(x * ca - y * sa, x * sa + y * ca) for x, y in tooth]), fill=fg)
    d.ellipse(_box(cx, cy, r, -0.68, -0.68, 0.68, 0.68), fill=fg)
    d.ellipse(_box(cx, cy, r, -0.28, -0.28, 0.28, 0.28), fill=ac)


def icon_bird(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, fg: RGB, ac: RGB, bg: RGB) -> None:
    """A small bird in profile."""
    d.polygon(_pts(cx, cy, r, [(-0.5, 0.0), (-0.95, -0.45), (-0.95, 0.1)]), fill=fg)
    d.ellipse(_box(cx, cy, r, -0.65, -0.35, 0.45, 0.45), fill=fg)
    d.ellipse(_box(cx, cy, r, 0.15, -0.7, 0.65, -0.2), fill=fg)
    d.polygon(_pts(cx, cy, r, [(0.6, -0.55), (0.95, -0.42), (0.6, -0.35)]), fill=ac)
    d.chord(_box(cx, cy, r, -0.45, -0.2, 0.25, 0.3), 0, 180, fill=ac)
    d.line(_pts(cx, cy, r, [(-0.1, 0.45), (-0.1, 0.8)]), fill=ac, width=_w(r, 0.07))
    d.line(_pts(cx, cy, r, [(0.1, 0.45), (0.1, 0.8)]), fill=ac, width=_w(r, 0.07))


def icon_wind(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, fg: RGB, ac: RGB, bg: RGB) -> None:
    """Three gust lines ending in curls."""
    for y, x_end, col in [(-0.5, 0.45, fg), (0.0, 0.7, ac), (0.5, 0.3, fg)]:
        d.line(_pts(cx, cy, r, [(-0.95, y), (x_end, y)]), fill=col, width=_w(r, 0.13))
        d.arc(_box(cx, cy, r, x_end - 0.25, y - 0.5, x_end + 0.25, y), -90, 90, fill=col, width=_w(r, 0.13))


def icon_alarm(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, fg: RGB, ac: RGB, bg: RGB) -> None:
    """An alarm clock with two bells."""
    d.ellipse(_box(cx, cy, r, -0.95, -0.95, -0.35, -0.35), fill=ac)
    d.ellipse(_box(cx, cy, r, 0.35, -0.95, 0.95, -0.35), fill=ac)
    d.line(_pts(cx, cy, r, [(-0.5, 0.5), (-0.75, 0.95)]), fill=ac, width=_w(r, 0.1))
    d.line(_pts(cx, cy, r, [(0.5, 0.5), (0.75, 0.95)]), fill=ac, width=_w(r, 0.1))
    d.ellipse(_box(cx, cy, r, -0.75, -0.7, 0.75, 0.8), fill=fg)
    d.line(_pts(cx, cy, r, [(0.0, 0.05), (0.0, -0.45)]), fill=bg, width=_w(r, 0.1))
    d.line(_pts(cx, cy, r, [(0.0, 0.05), (0.35, 0.2)]), fill=bg, width=_w(r, 0.1))


def icon_water_drip(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, fg: RGB, ac: RGB, bg: RGB) -> None:
    """A falling drop with a highlight."""
    d.polygon(_pts(cx, cy, r, [(-0.5, 0.1), (0.5, 0.1), (0.0, -0.95)]), fill=fg)
    d.ellipse(_box(cx, cy, r, -0.55, -0.25, 0.55, 0.85), fill=fg)
    d.ellipse(_box(cx, cy, r, -0.3, 0.05, -0.1, 0.4), fill=ac)


def icon_phone_ring(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, fg: RGB, ac: RGB, bg: RGB) -> None:
    """A desk telephone: handset on a body with a dial."""
    d.rounded_rectangle(_box(cx, cy, r, -0.75, -0.15, 0.75, 0.8), radius=0.2 * r, fill=fg)
    d.rounded_rectangle(_box(cx, cy, r, -0.95, -0.7, 0.95, -0.3), radius=0.18 * r, fill=ac)
    d.ellipse(_box(cx, cy, r, -0.32, 0.0, 0.32, 0.64), fill=ac)
    d.ellipse(_box(cx, cy, r, -0.12, 0.2, 0.12, 0.44), fill=fg)


def icon_insect(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, fg: RGB, ac: RGB, bg: RGB) -> None:
    """An insect seen from above: legs, wings, body, head."""
    for y in (-0.2, 0.15, 0.5):
        d.line(_pts(cx, cy, r, [(-0.85, y + 0.15), (0.85, y - 0.15)]), fill=ac, width=_w(r, 0.06))
        d.line(_pts(cx, cy, r, [(-0.85, y - 0.15), (0.85, y + 0.15)]), fill=ac, width=_w(r, 0.06))
    d.ellipse(_box(cx, cy, r, -0.7, -0.4, 0.0, 0.55), fill=ac)
    d.ellipse(_box(cx, cy, r, 0.0, -0.4, 0.7, 0.55), fill=ac)
    d.ellipse(_box(cx, cy, r, -0.22, -0.5, 0.22, 0.9), fill=fg)
    d.ellipse(_box(cx, cy, r, -0.2, -0.85, 0.2, -0.45), fill=fg)


def icon_crackle(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, fg: RGB, ac: RGB, bg: RGB) -> None:
    """A flame over two logs."""
    outer = [(0.0, -0.95), (0.35, -0.4), (0.6, -0.1), (0.6, 0.3), (0.35, 0.6), (-0.35, 0.6), (-0.6, 0.3), (-0.55, -0.2), (-0.3, 0.0), (-0.2, -0.5)]
    d.polygon(_pts(cx, cy, r, outer), fill=fg)
    inner = [(0.05, -0.35), (0.3, 0.05), (0.3, 0.35), (0.0, 0.55), (-0.3, 0.35), (-0.2, 0.0)]
    d.polygon(_pts(cx, cy, r, inner), fill=ac)
    d.line(_pts(cx, cy, r, [(-0.85, 0.65), (0.85, 0.9)]), fill=ac, width=_w(r, 0.14))
    d.line(_pts(cx, cy, r, [(-0.85, 0.9), (0.85, 0.65)]), fill=ac, width=_w(r, 0.14))


def icon_heartbeat(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, fg: RGB, ac: RGB, bg: RGB) -> None:
    """A heart with an ECG trace across it."""
    d.ellipse(_box(cx, cy, r, -0.8, -0.7, 0.0, 0.1), fill=fg)
    d.ellipse(_box(cx, cy, r, 0.0, -0.7, 0.8, 0.1), fill=fg)
    d.polygon(_pts(cx, cy, r, [(-0.76, -0.15), (0.76, -0.15), (0.0, 0.85)]), fill=fg)
    ecg = [(-0.95, 0.0), (-0.35, 0.0), (-0.2, -0.5), (0.0, 0.45), (0.15, -0.2), (0.3, 0.0), (0.95, 0.0)]
    d.line(_pts(cx, cy, r, ecg), fill=ac, width=_w(r, 0.09))


ICONS: Dict[str, IconFn] = {
    "harmonic_tone": icon_harmonic_tone,
    "chirp": icon_chirp,
    "siren": icon_siren,
    "noise_burst": icon_noise_burst,
    "click_train": icon_click_train,
    "bell": icon_bell,
    "drum": icon_drum,
    "babble": icon_babble,
    "rain": icon_rain,
    "engine": icon_engine,
    "bird": icon_bird,
    "wind": icon_wind,
    "alarm": icon_alarm,
    "water_drip": icon_water_drip,
    "phone_ring": icon_phone_ring,
    "insect": icon_insect,
    "crackle": icon_crackle,
    "heartbeat": icon_heartbeat,
}


def render_frame(label: str, params: PictureParams, size: int, scale: float = 1.0, brightness: float = 1.0) -> Image.Image:
    """Draw the picture of a clip, optionally scaled/dimmed for an animation frame.

    Args:
        label: class name (selects the icon).
        params: the clip's picture parameters.
        size: image width and height in pixels.
        scale: icon size factor (1 = the still picture).
        brightness: icon brightness factor in (0, 1] (1 = the still picture).

    Returns:
        An RGB image of ``size x size`` pixels.
    """
    if label not in ICONS:
        raise KeyError(f"no icon for sound class '{label}'; expected one of {sorted(ICONS)}")
    img = _background(size, params)
    draw = ImageDraw.Draw(img)
    fg = _hsv(params.hue, params.sat, params.val * brightness)
    ac = _hsv((params.hue + 0.04) % 1.0, params.sat * 0.6, params.val * brightness * 0.65)
    bg = _hsv(params.bg_hue, params.bg_sat, params.bg_val)
    ICONS[label](draw, params.cx * size, params.cy * size, params.radius * size * scale, fg, ac, bg)
    return img


def loudness_envelope(wave: np.ndarray, num_frames: int, floor_db: float = -30.0) -> np.ndarray:
    """Per-frame loudness of a clip in [0, 1] (RMS in dB above ``floor_db`` re the loudest frame).

    Args:
        wave: mono waveform [T].
        num_frames: number of equal windows (video frames) over the clip.
        floor_db: level mapped to 0.

    Returns:
        Envelope [num_frames] in [0, 1].
    """
    edges = np.linspace(0, len(wave), num_frames + 1).astype(np.int64)
    rms = np.array([np.sqrt(np.mean(wave[a:b] ** 2)) if b > a else 0.0 for a, b in zip(edges[:-1], edges[1:])])
    db = 20.0 * np.log10(np.maximum(rms, 1e-10) / max(float(rms.max()), 1e-10))
    return np.clip((db - floor_db) / -floor_db, 0.0, 1.0)


def render_video_frames(label: str, params: PictureParams, size: int, envelope: np.ndarray) -> List[np.ndarray]:
    """Frames whose icon grows and brightens with the loudness envelope.

    Args:
        label: class name.
        params: the clip's picture parameters.
        size: frame width and height in pixels.
        envelope: loudness per frame in [0, 1], [F].

    Returns:
        F frames, each uint8 [size, size, 3].
    """
    return [
        np.asarray(render_frame(label, params, size, scale=0.8 + 0.35 * float(e), brightness=0.55 + 0.45 * float(e)))
        for e in envelope
    ]


def write_video(path: str, frames: Sequence[np.ndarray], fps: int) -> None:
    """Encode frames as an H.264 mp4, deterministically.

    Args:
        path: output file (.mp4).
        frames: uint8 RGB frames [H, W, 3] with even H and W.
        fps: frame rate.
    """
    height, width = frames[0].shape[:2]
    if height % 2 or width % 2:
        raise ValueError(f"{path}: yuv420p video needs even frame sizes, got {width}x{height}")
    with av.open(path, mode="w", format="mp4") as container:
        stream = container.add_stream(VIDEO_CODEC, rate=fps, options=dict(VIDEO_OPTIONS))
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        stream.codec_context.thread_count = 1
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
