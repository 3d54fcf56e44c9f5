"""Sound classes of the synthetic `mini_use` corpus.

Every class is a small numpy synthesiser that draws its own random variant per
clip (pitch, rate, duration of events, envelope, timbre) plus caption templates
whose slots are filled from the drawn parameters, so a caption describes the
clip it belongs to ("a high-pitched siren wailing rapidly").

Each class has one *variant coordinate* ``u`` in [0, 1] that drives its main
parameter (pitch for tonal classes, event rate for textures; see
``SoundClass.variant_param``). The corpus generator draws ``u`` from
``[0, 0.4) U [0.6, 1]`` for the train and valid pools and from ``[0.4, 0.6)``
for the test pool, so test clips are variants never heard in training.
Descriptor words that depend on ``u`` switch at ``u = 0.5`` only, so every
word of a test caption also occurs in training captions.

All synthesisers take ``(rng, u, num_samples, fs)`` and return the waveform
(float64, peak normalised to 0.9) and the slot words of the caption. Every
frequency is capped below 0.45 * fs, so any ``fs >= 8000`` works.
"""
from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np
from scipy import signal

SynthFn = Callable[[np.random.Generator, float, int, int], Tuple[np.ndarray, Dict[str, str]]]

# Variant coordinate ranges: the test pool holds out the middle band.
TRAIN_U_RANGES: Tuple[Tuple[float, float], ...] = ((0.0, 0.4), (0.6, 1.0))
TEST_U_RANGES: Tuple[Tuple[float, float], ...] = ((0.4, 0.6),)
# Descriptor words switch here; it lies inside the held-out band, so both sides
# are seen in training and in test.
U_SPLIT = 0.5


@dataclass(frozen=True)
class SoundClass:
    """One class of sound.

    Args:
        name: label, a single token (line of ``labels.txt``).
        synth: synthesiser ``(rng, u, num_samples, fs) -> (wave, slots)``.
        templates: caption templates; ``{slot}`` fields are filled from ``slots``.
        variant_param: what the variant coordinate ``u`` controls (documentation).
    """

    name: str
    synth: SynthFn
    templates: Tuple[str, ...]
    variant_param: str

    def caption(self, rng: np.random.Generator, slots: Dict[str, str]) -> str:
        """Fill a randomly chosen template with ``slots``.

        Args:
            rng: random generator of the clip.
            slots: slot words returned by ``synth``.

        Returns:
            The caption, one line of text.
        """
        template = self.templates[int(rng.integers(len(self.templates)))]
        return template.format(**slots)


# ----------------------------------------------------------------------------
# DSP helpers
# ----------------------------------------------------------------------------
def _log_map(u: float, lo: float, hi: float) -> float:
    """Map u in [0, 1] to [lo, hi] on a log scale (pitch and rate perception)."""
    return float(lo * (hi / lo) ** u)


def _fmax(fs: int) -> float:
    """Highest frequency any class may put energy at (margin below Nyquist)."""
    return 0.45 * fs


def _pick(rng: np.random.Generator, words: Sequence[str]) -> str:
    """One synonym, so captions vary beyond the template choice."""
    return str(words[int(rng.integers(len(words)))])


def _side(u: float, low: Sequence[str], high: Sequence[str], rng: np.random.Generator) -> str:
    """A descriptor word for the low or high side of the variant coordinate."""
    return _pick(rng, low if u < U_SPLIT else high)


def _phase(freq: np.ndarray, fs: int) -> np.ndarray:
    """Instantaneous phase of an oscillator following ``freq`` (Hz per sample)."""
    return 2.0 * np.pi * np.cumsum(freq) / fs


def _harmonic_sum(f0: np.ndarray, amps: Sequence[float], fs: int) -> np.ndarray:
    """Sum of harmonics of a time-varying fundamental, each muted above fmax.

    Muting per sample (rather than dropping a harmonic for the whole clip) keeps
    gliding sounds free of aliasing when their pitch rises.
    """
    phase = _phase(f0, fs)
    out = np.zeros_like(f0)
    for k, amp in enumerate(amps, start=1):
        audible = (k * f0) < _fmax(fs)
        if not audible.any():
            break
        out += amp * np.sin(k * phase) * audible
    return out


def _fade(x: np.ndarray, fs: int, ms: float = 10.0) -> np.ndarray:
    """Raised-cosine fade in and out so clips start and end without a click."""
    n = min(int(fs * ms / 1000), len(x) // 2)
    if n > 0:
        ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, n))
        x = x.copy()
        x[:n] *= ramp
        x[-n:] *= ramp[::-1]
    return x


def _butter(x: np.ndarray, fs: int, lo: float = 0.0, hi: float = 0.0, order: int = 4) -> np.ndarray:
    """Butterworth low/high/band-pass filter (lo=0: lowpass, hi=0: highpass)."""
    nyq = fs / 2.0
    hi = min(hi, _fmax(fs)) if hi > 0 else 0.0
    if lo > 0 and hi > 0:
        sos = signal.butter(order, [lo / nyq, hi / nyq], btype="bandpass", output="sos")
    elif hi > 0:
        sos = signal.butter(order, hi / nyq, btype="lowpass", output="sos")
    else:
        sos = signal.butter(order, lo / nyq, btype="highpass", output="sos")
    return signal.sosfilt(sos, x)


def _resonator_coeffs(freq: float, bw: float, fs: int) -> Tuple[np.ndarray, np.ndarray]:
    """Two-pole resonator at ``freq`` Hz with bandwidth ``bw`` Hz (unit peak gain)."""
    r = np.exp(-np.pi * bw / fs)
    theta = 2.0 * np.pi * min(freq, _fmax(fs)) / fs
    a = np.array([1.0, -2.0 * r * np.cos(theta), r * r])
    # Normalise so the resonance peak is about 1 whatever the bandwidth.
    b = np.array([(1.0 - r * r) / 2.0])
    return b, a


def _event_times(rng: np.random.Generator, n: int, fs: int, rate: float, jitter: float) -> np.ndarray:
    """Event onsets (samples) at ``rate`` per second, each shifted by +-jitter periods."""
    period = fs / rate
    start = rng.uniform(0.0, period)
    base = np.arange(start, n, period)
    times = base + rng.uniform(-jitter, jitter, size=len(base)) * period
    return np.sort(times[(times >= 0) & (times < n)]).astype(np.int64)


def _poisson_times(rng: np.random.Generator, n: int, fs: int, rate: float) -> np.ndarray:
    """Onsets (samples) of a Poisson process with ``rate`` events per second."""
    count = rng.poisson(rate * n / fs)
    return np.sort(rng.integers(0, n, size=count))


def _add_at(out: np.ndarray, pos: int, kernel: np.ndarray, gain: float = 1.0) -> None:
    """Add ``gain * kernel`` into ``out`` starting at ``pos``, cut at the end."""
    end = min(len(out), pos + len(kernel))
    if end > pos:
        out[pos:end] += gain * kernel[: end - pos]


def _decay(n: int, fs: int, tau: float) -> np.ndarray:
    """Exponential decay with time constant ``tau`` seconds, ``n`` samples."""
    return np.exp(-np.arange(n) / (fs * tau))


def _smooth_noise(rng: np.random.Generator, n: int, fs: int, cutoff: float) -> np.ndarray:
    """Slowly varying random curve in [-1, 1]: lowpassed noise, normalised."""
    # Filter at a low control rate; a 0.5 Hz lowpass at 8 kHz is numerically poor.
    ctrl_fs = 100
    m = int(np.ceil(n * ctrl_fs / fs)) + 2
    sos = signal.butter(2, min(cutoff, 0.45 * ctrl_fs) / (ctrl_fs / 2), output="sos")
    c = signal.sosfiltfilt(sos, rng.standard_normal(m + 200))[100 : 100 + m]
    c = c / (np.max(np.abs(c)) + 1e-12)
    return np.interp(np.arange(n) * ctrl_fs / fs, np.arange(m), c)


def _finish(x: np.ndarray, fs: int) -> np.ndarray:
    """Remove DC, fade the edges and peak-normalise to 0.9."""
    x = x - np.mean(x)
    x = _fade(x, fs)
    peak = np.max(np.abs(x))
    if peak <= 0:
        raise RuntimeError("a sound class produced a silent clip")
    return 0.9 * x / peak


# ----------------------------------------------------------------------------
# Synthesisers, one per class
# ----------------------------------------------------------------------------
def synth_harmonic_tone(rng: np.random.Generator, u: float, n: int, fs: int) -> Tuple[np.ndarray, Dict[str, str]]:
    """A held harmonic note with vibrato: f0 140-700 Hz (u), 3-10 harmonics."""
    t = np.arange(n) / fs
    f0 = _log_map(u, 140.0, 700.0)
    vib_rate = rng.uniform(4.0, 7.0)
    vib_depth = rng.uniform(0.005, 0.03)
    tilt = rng.uniform(0.5, 1.8)
    amps = np.arange(1, int(rng.integers(3, 11)) + 1, dtype=float) ** -tilt
    freq = f0 * (1.0 + vib_depth * np.sin(2 * np.pi * vib_rate * t + rng.uniform(0, 2 * np.pi)))
    x = _harmonic_sum(freq, amps, fs)
    attack = rng.uniform(0.03, 0.2)
    release = rng.uniform(0.05, 0.3)
    env = np.clip(t / attack, 0, 1) * np.clip((t[-1] - t) / release, 0, 1)
    x = x * env
    slots = {
        "pitch": _side(u, ["low", "deep", "low-pitched"], ["high", "high-pitched", "thin"], rng),
        "vibrato": _pick(rng, ["gentle", "slight", "subtle"] if vib_depth < 0.015 else ["strong", "wide", "heavy"]),
        "timbre": _pick(rng, ["mellow", "soft", "pure"] if tilt > 1.1 else ["bright", "rich", "buzzy"]),
    }
    return _finish(x, fs), slots


def synth_chirp(rng: np.random.Generator, u: float, n: int, fs: int) -> Tuple[np.ndarray, Dict[str, str]]:
    """Repeated exponential frequency sweeps, 0.8-5 per second (u), up or down."""
    rate = _log_map(u, 0.8, 5.0)
    f_lo = rng.uniform(200.0, 600.0)
    f_hi = min(rng.uniform(1500.0, 3400.0), _fmax(fs) / 1.3)
    rising = bool(rng.integers(2))
    sweep = rng.uniform(0.3, 0.8) / rate
    m = int(sweep * fs)
    tt = np.arange(m) / m
    f_a, f_b = (f_lo, f_hi) if rising else (f_hi, f_lo)
    freq = f_a * (f_b / f_a) ** tt
    kernel = _harmonic_sum(freq, [1.0, rng.uniform(0.0, 0.4)], fs) * np.hanning(m)
    x = np.zeros(n)
    for pos in _event_times(rng, n, fs, rate, 0.1):
        _add_at(x, int(pos), kernel, rng.uniform(0.7, 1.0))
    slots = {
        "speed": _side(u, ["slow", "unhurried", "leisurely"], ["rapid", "quick", "fast"], rng),
        "direction": "rising" if rising else "falling",
        "way": "upward" if rising else "downward",
    }
    return _finish(x, fs), slots


def synth_siren(rng: np.random.Generator, u: float, n: int, fs: int) -> Tuple[np.ndarray, Dict[str, str]]:
    """A siren gliding around 450-1400 Hz (u): slow wail or fast yelp."""
    t = np.arange(n) / fs
    fc = _log_map(u, 450.0, 1400.0)
    swing = rng.uniform(0.2, 0.45)
    yelp = bool(rng.integers(2))
    lfo_rate = rng.uniform(2.0, 4.0) if yelp else rng.uniform(0.2, 0.6)
    ph = (lfo_rate * t + rng.uniform(0, 1)) % 1.0
    # A wail is a smooth sine glide; a yelp is a fast triangle.
    lfo = (2 * np.abs(2 * ph - 1) - 1) if yelp else np.sin(2 * np.pi * ph)
    freq = fc * (1.0 + swing * lfo)
    x = _harmonic_sum(freq, [1.0, 0.5, 0.35, 0.2], fs)
    slots = {
        "pitch": _side(u, ["low", "low-pitched", "deep"], ["high", "high-pitched", "shrill"], rng),
        "manner": _pick(rng, ["rapidly", "quickly", "fast"] if yelp else ["slowly", "steadily", "gradually"]),
        "kind": "yelp" if yelp else "wail",
    }
    return _finish(x, fs), slots


def synth_noise_burst(rng: np.random.Generator, u: float, n: int, fs: int) -> Tuple[np.ndarray, Dict[str, str]]:
    """Bursts of band-passed noise centred at 250-2800 Hz (u), sharp or swelling."""
    fc = _log_map(u, 250.0, 2800.0)
    bw_oct = rng.uniform(0.5, 1.5)
    lo = fc / 2 ** (bw_oct / 2)
    hi = min(fc * 2 ** (bw_oct / 2), _fmax(fs))
    noise = _butter(rng.standard_normal(n), fs, lo=lo, hi=hi)
    rate = rng.uniform(0.8, 3.5)
    dur = rng.uniform(0.06, 0.4)
    sharp = bool(rng.integers(2))
    m = int(dur * fs)
    if sharp:
        shape = np.clip(np.arange(m) / (0.003 * fs), 0, 1) * _decay(m, fs, dur / 4)
    else:
        shape = np.hanning(m) ** 2
    env = np.zeros(n)
    for pos in _event_times(rng, n, fs, rate, 0.3):
        _add_at(env, int(pos), shape, rng.uniform(0.6, 1.0))
    slots = {
        "band": _side(u, ["low", "rumbling", "muffled"], ["high", "hissing", "bright"], rng),
        "shape": _pick(rng, ["sharp", "abrupt", "snappy"] if sharp else ["swelling", "soft", "gradual"]),
        "pace": "occasional" if rate < 2.0 else "frequent",
    }
    return _finish(noise * env, fs), slots


def synth_click_train(rng: np.random.Generator, u: float, n: int, fs: int) -> Tuple[np.ndarray, Dict[str, str]]:
    """Clicks at 3-50 per second (u), regular or irregular, resonant click body."""
    rate = _log_map(u, 3.0, 50.0)
    regular = bool(rng.integers(2))
    f_res = rng.uniform(900.0, min(3200.0, _fmax(fs)))
    m = int(0.012 * fs)
    kernel = np.sin(2 * np.pi * f_res * np.arange(m) / fs) * _decay(m, fs, rng.uniform(0.0008, 0.003))
    x = np.zeros(n)
    for pos in _event_times(rng, n, fs, rate, 0.02 if regular else 0.35):
        _add_at(x, int(pos), kernel, rng.uniform(0.8, 1.0))
    slots = {
        "speed": _side(u, ["slow", "leisurely", "sparse"], ["rapid", "fast", "dense"], rng),
        "reg": _pick(rng, ["regular", "steady", "even"] if regular else ["irregular", "uneven", "erratic"]),
    }
    return _finish(x, fs), slots


# Partial ratios of a church-bell-like spectrum (after Risset's bell).
_BELL_RATIOS = np.array([0.56, 0.92, 1.19, 1.71, 2.0, 2.74, 3.0, 3.76, 4.07])
_BELL_AMPS = np.array([1.0, 0.67, 1.0, 1.8, 2.67, 1.67, 1.46, 1.33, 1.33])


def synth_bell(rng: np.random.Generator, u: float, n: int, fs: int) -> Tuple[np.ndarray, Dict[str, str]]:
    """Inharmonic bell partials on a strike tone of 250-900 Hz (u), 1-4 strikes."""
    f0 = _log_map(u, 250.0, 900.0)
    ratios = _BELL_RATIOS * (1.0 + rng.uniform(-0.01, 0.01, size=len(_BELL_RATIOS)))
    amps = _BELL_AMPS * rng.uniform(0.6, 1.0, size=len(_BELL_AMPS))
    t60 = rng.uniform(0.4, 2.0)
    m = n
    tt = np.arange(m) / fs
    kernel = np.zeros(m)
    for ratio, amp in zip(ratios, amps):
        f = f0 * ratio
        if f >= _fmax(fs):
            continue
        # Higher partials die away faster, as in struck metal.
        tau = t60 / 6.9 * ratio ** -0.7
        kernel += amp * np.sin(2 * np.pi * f * tt + rng.uniform(0, 2 * np.pi)) * np.exp(-tt / tau)
    repeated = bool(rng.integers(2))
    x = np.zeros(n)
    if repeated:
        for pos in _event_times(rng, n, fs, rng.uniform(0.8, 2.5), 0.1):
            _add_at(x, int(pos), kernel, rng.uniform(0.7, 1.0))
    else:
        _add_at(x, int(rng.uniform(0.0, 0.2) * n), kernel)
    slots = {
        "pitch": _side(u, ["low", "deep", "large"], ["high", "small", "bright"], rng),
        "ring": _pick(rng, ["long", "lingering", "resonant"] if t60 > 1.0 else ["short", "brief", "dull"]),
        "strikes": "struck repeatedly" if repeated else "struck once",
    }
    return _finish(x, fs), slots


def synth_drum(rng: np.random.Generator, u: float, n: int, fs: int) -> Tuple[np.ndarray, Dict[str, str]]:
    """Membrane hits: pitch-dropping sine 50-220 Hz (u) plus a noise snap."""
    f0 = _log_map(u, 50.0, 220.0)
    drop = rng.uniform(1.5, 3.0)
    drop_tau = rng.uniform(0.01, 0.04)
    decay = rng.uniform(0.06, 0.3)
    m = int(min(4 * decay, 1.0) * fs)
    tt = np.arange(m) / fs
    freq = f0 * (1.0 + (drop - 1.0) * np.exp(-tt / drop_tau))
    body = np.sin(_phase(freq, fs)) * np.exp(-tt / decay)
    snap_len = int(0.02 * fs)
    snap = np.zeros(m)
    snap[:snap_len] = _butter(rng.standard_normal(snap_len), fs, hi=2500.0) * _decay(snap_len, fs, 0.005)
    kernel = body + rng.uniform(0.0, 0.6) * snap
    tempo = rng.uniform(1.5, 5.0)
    x = np.zeros(n)
    for i, pos in enumerate(_event_times(rng, n, fs, tempo, 0.05)):
        # Accent every other hit, as a simple rhythm would.
        _add_at(x, int(pos), kernel, (1.0 if i % 2 == 0 else 0.7) * rng.uniform(0.85, 1.0))
    fast = tempo > 3.0
    slots = {
        "pitch": _side(u, ["deep", "low", "booming"], ["tight", "high", "small"], rng),
        "tempo": _pick(rng, ["fast", "rapid", "quick"] if fast else ["slow", "steady", "measured"]),
        "tempo_adv": "quickly" if fast else "slowly",
    }
    return _finish(x, fs), slots


# Formant frequencies (F1, F2, F3) of five vowels, adult male (Peterson & Barney).
_VOWELS = np.array([[730, 1090, 2440], [270, 2290, 3010], [300, 870, 2240], [530, 1840, 2480], [570, 840, 2410]], float)


def _babble_voice(rng: np.random.Generator, f0: float, n: int, fs: int, syll_rate: float) -> np.ndarray:
    """One voice: glottal harmonic source through cascaded formant resonators."""
    intonation = 1.0 + 0.15 * _smooth_noise(rng, n, fs, 1.5)
    f0_track = f0 * intonation
    n_harm = int(_fmax(fs) / (f0 * 0.85))
    # -12 dB per octave: the spectral tilt of a glottal pulse.
    source = _harmonic_sum(f0_track, np.arange(1, n_harm + 1, dtype=float) ** -2.0, fs)
    source += 0.02 * rng.standard_normal(n)
    bounds = [0]
    while bounds[-1] < n:
        bounds.append(bounds[-1] + int(fs / syll_rate * rng.uniform(0.6, 1.4)))
    bounds[-1] = n
    formant_scale = 1.0 + 0.2 * (f0 > 160)
    zi = [np.zeros(2) for _ in range(3)]
    out = np.zeros(n)
    syll_env = np.zeros(n)
    for a, b in zip(bounds[:-1], bounds[1:]):
        formants = _VOWELS[int(rng.integers(len(_VOWELS)))] * formant_scale
        seg = source[a:b]
        for j, (f, bw) in enumerate(zip(formants, (80.0, 100.0, 140.0))):
            bb, aa = _resonator_coeffs(float(f), bw, fs)
            seg, zi[j] = signal.lfilter(bb, aa, seg, zi=zi[j])
        out[a:b] = seg
        # Syllables with occasional pauses between words.
        level = 0.0 if rng.uniform() < 0.15 else rng.uniform(0.5, 1.0)
        syll_env[a:b] = level * np.hanning(b - a) ** 0.5
    return out * syll_env


def synth_babble(rng: np.random.Generator, u: float, n: int, fs: int) -> Tuple[np.ndarray, Dict[str, str]]:
    """Vowel-like formant-filtered pulse trains: one or a few voices, f0 90-260 Hz (u)."""
    f0 = _log_map(u, 90.0, 260.0)
    syll_rate = rng.uniform(2.5, 7.0)
    voices = int(rng.integers(1, 4))
    x = np.zeros(n)
    for v in range(voices):
        f_v = f0 * (1.0 if v == 0 else rng.uniform(0.8, 1.25))
        x += _babble_voice(rng, f_v, n, fs, syll_rate * rng.uniform(0.85, 1.15)) * (1.0 if v == 0 else 0.7)
    slots = {
        "voice": _side(u, ["low", "deep", "low-pitched"], ["high", "high-pitched", "light"], rng),
        "pace": _pick(rng, ["fast", "hurried", "quick"] if syll_rate > 4.5 else ["slow", "calm", "unhurried"]),
        "who": "a single voice" if voices == 1 else "several voices",
    }
    return _finish(x, fs), slots


def _drop_bank(rng: np.random.Generator, fs: int, count: int, f_lo: float, f_hi: float, tau: Tuple[float, float]) -> List[np.ndarray]:
    """Short decaying resonances used as droplets and crackles."""
    bank = []
    for _ in range(count):
        f = rng.uniform(f_lo, min(f_hi, _fmax(fs)))
        tc = rng.uniform(*tau)
        m = int(5 * tc * fs) + 2
        bank.append(np.sin(2 * np.pi * f * np.arange(m) / fs) * _decay(m, fs, tc))
    return bank


def _scatter(rng: np.random.Generator, n: int, times: np.ndarray, bank: List[np.ndarray], gains: np.ndarray) -> np.ndarray:
    """Place kernels from ``bank`` at ``times`` with ``gains`` (one FFT convolution per kernel)."""
    out = np.zeros(n)
    which = rng.integers(len(bank), size=len(times))
    for k, kernel in enumerate(bank):
        sel = which == k
        if not sel.any():
            continue
        impulses = np.zeros(n)
        np.add.at(impulses, times[sel], gains[sel])
        out += signal.fftconvolve(impulses, kernel)[:n]
    return out


def synth_rain(rng: np.random.Generator, u: float, n: int, fs: int) -> Tuple[np.ndarray, Dict[str, str]]:
    """Rain: Poisson droplets at 40-900 per second (u) over high-passed hiss."""
    density = _log_map(u, 40.0, 900.0)
    times = _poisson_times(rng, n, fs, density)
    gains = rng.lognormal(0.0, 0.6, size=len(times)) * rng.choice([-1.0, 1.0], size=len(times))
    drops = _scatter(rng, n, times, _drop_bank(rng, fs, 6, 1200.0, 3500.0, (0.0008, 0.003)), gains)
    hiss = _butter(rng.standard_normal(n), fs, lo=rng.uniform(1000.0, 2000.0)) * rng.uniform(0.05, 0.2)
    x = drops / (np.std(drops) + 1e-12) + hiss / (np.std(hiss) + 1e-12) * (0.3 + 0.5 * u)
    surface = _pick(rng, ["on a roof", "on leaves", "against a window", "on the pavement"])
    slots = {
        "intensity": _side(u, ["light", "gentle", "soft"], ["heavy", "pouring", "dense"], rng),
        "surface": surface,
    }
    return _finish(x, fs), slots


def synth_engine(rng: np.random.Generator, u: float, n: int, fs: int) -> Tuple[np.ndarray, Dict[str, str]]:
    """Engine drone: firing rate 22-70 Hz (u) harmonics, amplitude modulated, idling or revving."""
    t = np.arange(n) / fs
    f0 = _log_map(u, 22.0, 70.0)
    revving = bool(rng.integers(2))
    if revving:
        rev = 1.0 + rng.uniform(0.2, 0.6) * np.sin(np.pi * t / t[-1]) ** 2
    else:
        rev = 1.0 + 0.03 * _smooth_noise(rng, n, fs, 2.0)
    freq = f0 * rev
    n_harm = min(40, int(_fmax(fs) / f0))
    x = _harmonic_sum(freq, np.arange(1, n_harm + 1, dtype=float) ** -0.7, fs)
    x = _butter(x, fs, hi=rng.uniform(900.0, 2000.0), order=2)
    # Cylinder firing imbalance: modulation at half the firing rate.
    am = 1.0 + rng.uniform(0.2, 0.6) * np.sin(_phase(freq / 2.0, fs))
    rumble = _butter(rng.standard_normal(n), fs, hi=300.0) * rng.uniform(0.1, 0.4)
    x = x / (np.std(x) + 1e-12) * am + rumble / (np.std(rumble) + 1e-12) * 0.3
    slots = {
        "size": _side(u, ["large", "heavy", "big"], ["small", "light", "little"], rng),
        "pitch": _side(u, ["deep", "low"], ["high", "whining"], rng),
        "state": _pick(rng, ["revving", "accelerating"] if revving else ["idling", "running steadily"]),
    }
    return _finish(x, fs), slots


def synth_bird(rng: np.random.Generator, u: float, n: int, fs: int) -> Tuple[np.ndarray, Dict[str, str]]:
    """Bird trills: FM chirp syllables at 5-18 per second (u) in phrases."""
    syll_rate = _log_map(u, 5.0, 18.0)
    top = _fmax(fs)
    high = bool(rng.integers(2))
    f_base = rng.uniform(2300.0, 3000.0) if high else rng.uniform(1400.0, 2100.0)
    f_base = min(f_base, top / 1.3)
    x = np.zeros(n)
    pos = int(rng.uniform(0.0, 0.2) * fs)
    while pos < n:
        phrase_end = pos + int(rng.uniform(0.4, 1.2) * fs)
        # One syllable shape per phrase: real trills repeat a note.
        m = int(min(rng.uniform(0.025, 0.07), 0.8 / syll_rate) * fs)
        ratio = rng.uniform(0.6, 1.3)
        tt = np.arange(m) / m
        freq = np.minimum(f_base * ratio ** tt, top)
        freq = freq * (1.0 + 0.04 * np.sin(2 * np.pi * rng.uniform(2, 4) * tt))
        kernel = np.sin(_phase(freq, fs)) * np.hanning(m)
        while pos < min(phrase_end, n):
            _add_at(x, pos, kernel, rng.uniform(0.6, 1.0))
            pos += int(fs / syll_rate * rng.uniform(0.9, 1.1))
        pos += int(rng.uniform(0.1, 0.5) * fs)
    slots = {
        "pace": _side(u, ["slow", "lazy", "relaxed"], ["rapid", "fast", "quick"], rng),
        "pitch": _pick(rng, ["shrill", "piercing", "high"] if high else ["sweet", "soft", "mellow"]),
    }
    return _finish(x, fs), slots


def synth_wind(rng: np.random.Generator, u: float, n: int, fs: int) -> Tuple[np.ndarray, Dict[str, str]]:
    """Wind: noise through a slowly moving resonance at 180-1100 Hz (u), with gusts."""
    fc = _log_map(u, 180.0, 1100.0)
    howl = bool(rng.integers(2))
    bw_rel = rng.uniform(0.06, 0.15) if howl else rng.uniform(0.5, 1.2)
    centre = fc * (1.0 + 0.35 * _smooth_noise(rng, n, fs, 0.4))
    strong = bool(rng.integers(2))
    gust = 1.0 + (0.8 if strong else 0.35) * _smooth_noise(rng, n, fs, 0.8)
    noise = rng.standard_normal(n)
    out = np.zeros(n)
    zi = np.zeros(2)
    block = 256
    # Time-varying filter: coefficients are updated per block, state carried over.
    for a in range(0, n, block):
        b_end = min(n, a + block)
        f = float(np.mean(centre[a:b_end]))
        bb, aa = _resonator_coeffs(f, f * bw_rel, fs)
        out[a:b_end], zi = signal.lfilter(bb, aa, noise[a:b_end], zi=zi)
    x = out * np.maximum(gust, 0.05)
    slots = {
        "pitch": _side(u, ["low", "deep"], ["high", "thin"], rng),
        "tone": _pick(rng, ["howling", "whistling", "moaning"] if howl else ["rushing", "blowing", "whooshing"]),
        "strength": _pick(rng, ["strong", "gusty", "blustery"] if strong else ["gentle", "soft", "light"]),
        "strength_adv": "strongly" if strong else "gently",
    }
    return _finish(x, fs), slots


def synth_alarm(rng: np.random.Generator, u: float, n: int, fs: int) -> Tuple[np.ndarray, Dict[str, str]]:
    """Square-ish electronic beeps at 500-2200 Hz (u), steady or grouped."""
    f = _log_map(u, 500.0, 2200.0)
    beep = rng.uniform(0.06, 0.25)
    gap = beep * rng.uniform(0.6, 2.0)
    grouped = bool(rng.integers(2))
    m = int(beep * fs)
    tt = np.arange(m) / fs
    odd = [1.0 / k if k % 2 == 1 else 0.0 for k in range(1, 8)]
    kernel = _harmonic_sum(np.full(m, f), odd, fs) * np.clip(np.minimum(tt, tt[-1] - tt) / 0.004, 0, 1)
    x = np.zeros(n)
    pos = int(rng.uniform(0.0, 0.3) * fs)
    group = int(rng.integers(2, 4))
    i = 0
    while pos < n:
        _add_at(x, pos, kernel)
        i += 1
        pos += int((beep + gap) * fs)
        if grouped and i % group == 0:
            pos += int(rng.uniform(0.3, 0.6) * fs)
    slots = {
        "pitch": _side(u, ["low", "low-pitched", "dull"], ["high", "piercing", "high-pitched"], rng),
        "pattern": "in short groups" if grouped else _pick(rng, ["in a steady rhythm", "without pause"]),
        "speed": _pick(rng, ["quick", "short"] if beep + gap < 0.3 else ["long", "slow"]),
    }
    return _finish(x, fs), slots


def synth_water_drip(rng: np.random.Generator, u: float, n: int, fs: int) -> Tuple[np.ndarray, Dict[str, str]]:
    """Water drips: rising resonant 'bloops' at 1.2-7 per second (u), dry or echoing."""
    rate = _log_map(u, 1.2, 7.0)
    top = _fmax(fs)
    echo = bool(rng.integers(2))
    x = np.zeros(n)
    for pos in _event_times(rng, n, fs, rate, 0.4):
        fa = rng.uniform(500.0, 1200.0)
        fb = min(fa * rng.uniform(1.5, 3.0), top)
        m = int(rng.uniform(0.015, 0.06) * fs)
        tt = np.arange(m) / m
        drip = np.sin(_phase(fa * (fb / fa) ** tt, fs)) * np.exp(-3.0 * tt) * np.clip(tt * 20, 0, 1)
        _add_at(x, int(pos), drip, rng.uniform(0.6, 1.0))
    if echo:
        # A few discrete reflections: a small tiled room or a cave.
        y = x.copy()
        for delay, gain in ((rng.uniform(0.03, 0.06), 0.35), (rng.uniform(0.07, 0.12), 0.2)):
            d = int(delay * fs)
            y[d:] += gain * x[:-d]
        x = y
    place_words = ["in a cave", "in a tiled bathroom", "in a sink"] if echo else ["into a bucket", "from a tap", "onto a puddle"]
    slots = {
        "pace": _side(u, ["slow", "occasional", "sparse"], ["fast", "frequent", "quick"], rng),
        "pace_adv": "slowly" if u < U_SPLIT else "quickly",
        "place": _pick(rng, place_words),
    }
    return _finish(x, fs), slots


def synth_phone_ring(rng: np.random.Generator, u: float, n: int, fs: int) -> Tuple[np.ndarray, Dict[str, str]]:
    """Telephone ring: two tones from 350-1100 Hz (u), trill-modulated, single or double cadence."""
    t = np.arange(n) / fs
    f1 = _log_map(u, 350.0, 1100.0)
    f2 = min(f1 * rng.uniform(1.12, 1.35), _fmax(fs))
    trill = rng.uniform(12.0, 25.0)
    tone = np.sin(2 * np.pi * f1 * t) + np.sin(2 * np.pi * f2 * t)
    am = (np.sin(2 * np.pi * trill * t) > 0).astype(float)
    am = np.convolve(am, np.hanning(int(0.004 * fs)) / np.sum(np.hanning(int(0.004 * fs))), mode="same")
    double = bool(rng.integers(2))
    on = rng.uniform(0.3, 1.0) if not double else rng.uniform(0.2, 0.4)
    off = rng.uniform(0.3, 0.8)
    gate = np.zeros(n)
    pos = int(rng.uniform(0.0, 0.2) * fs)
    while pos < n:
        bursts = 2 if double else 1
        for _ in range(bursts):
            a, b = pos, min(n, pos + int(on * fs))
            gate[a:b] = 1.0
            pos = b + int(0.2 * fs)
        pos += int(off * fs)
    gate = np.convolve(gate, np.ones(int(0.005 * fs)) / int(0.005 * fs), mode="same")
    slots = {
        "pitch": _side(u, ["low", "mellow", "soft"], ["high", "shrill", "bright"], rng),
        "cadence": "double" if double else _pick(rng, ["long", "single"]),
    }
    return _finish(tone * am * gate, fs), slots


def synth_insect(rng: np.random.Generator, u: float, n: int, fs: int) -> Tuple[np.ndarray, Dict[str, str]]:
    """Insects: 15-90 Hz pulses (u) on a 2.4-3.5 kHz carrier; cricket chirps or cicada buzz."""
    t = np.arange(n) / fs
    pulse_rate = _log_map(u, 15.0, 90.0)
    fc = min(rng.uniform(2400.0, 3500.0), _fmax(fs) * 0.97)
    cicada = bool(rng.integers(2))
    pulses = np.maximum(np.sin(2 * np.pi * pulse_rate * t + rng.uniform(0, 2 * np.pi)), 0.0) ** 3
    if cicada:
        carrier = _butter(rng.standard_normal(n), fs, lo=fc * 0.85, hi=fc * 1.1)
        carrier /= np.std(carrier) + 1e-12
        gate = 0.6 + 0.4 * _smooth_noise(rng, n, fs, 0.7)
    else:
        carrier = np.sin(2 * np.pi * fc * t)
        # Chirps: groups of 3-6 pulses, then a pause.
        group = int(rng.integers(3, 7))
        chirp_len = group / pulse_rate
        period = chirp_len + rng.uniform(0.15, 0.5)
        gate = ((t + rng.uniform(0, period)) % period < chirp_len).astype(float)
    x = carrier * pulses * gate
    slots = {
        "kind": "cicada" if cicada else "cricket",
        "verb": "buzzing" if cicada else "chirping",
        "pace": _side(u, ["slow", "lazy", "sparse"], ["rapid", "fast", "dense"], rng),
        "pace_adv": "slowly" if u < U_SPLIT else "rapidly",
    }
    return _finish(x, fs), slots


def synth_crackle(rng: np.random.Generator, u: float, n: int, fs: int) -> Tuple[np.ndarray, Dict[str, str]]:
    """Fire: sharp random crackles at 8-80 per second (u) over a low roar."""
    density = _log_map(u, 8.0, 80.0)
    times = _poisson_times(rng, n, fs, density)
    gains = rng.lognormal(0.0, 0.8, size=len(times)) * rng.choice([-1.0, 1.0], size=len(times))
    pops = _scatter(rng, n, times, _drop_bank(rng, fs, 5, 600.0, 3500.0, (0.0003, 0.0015)), gains)
    roar = _butter(np.cumsum(rng.standard_normal(n)), fs, lo=40.0, hi=300.0, order=2)
    x = pops / (np.max(np.abs(pops)) + 1e-12) + roar / (np.max(np.abs(roar)) + 1e-12) * rng.uniform(0.05, 0.2)
    slots = {
        "intensity": _side(u, ["small", "gentle", "quiet"], ["lively", "roaring", "big"], rng),
    }
    return _finish(x, fs), slots


def synth_heartbeat(rng: np.random.Generator, u: float, n: int, fs: int) -> Tuple[np.ndarray, Dict[str, str]]:
    """Heartbeat: lub-dub thumps of 55-110 Hz at 50-150 beats per minute (u)."""
    bpm = 50.0 + 100.0 * u
    period = 60.0 / bpm
    f_lub = rng.uniform(55.0, 90.0)
    f_dub = f_lub * rng.uniform(1.1, 1.3)

    def thump(f: float, dur: float) -> np.ndarray:
        m = int(dur * fs)
        tt = np.arange(m) / fs
        return (np.sin(2 * np.pi * f * tt) + 0.4 * np.sin(4 * np.pi * f * tt)) * np.sin(np.pi * tt / tt[-1]) ** 2

    lub = thump(f_lub, rng.uniform(0.07, 0.11))
    dub = thump(f_dub, rng.uniform(0.05, 0.08))
    split = rng.uniform(0.25, 0.35) * min(period, 0.8)
    x = np.zeros(n)
    for pos in _event_times(rng, n, fs, 1.0 / period, 0.03):
        _add_at(x, int(pos), lub)
        _add_at(x, int(pos + split * fs), dub, rng.uniform(0.5, 0.8))
    slots = {
        "tempo": _side(u, ["slow", "calm", "resting"], ["fast", "racing", "pounding"], rng),
        "tempo_adv": "slowly" if u < U_SPLIT else "quickly",
    }
    return _finish(x, fs), slots


# ----------------------------------------------------------------------------
# Registry: the order is the label order of labels.txt; never reorder.
# ----------------------------------------------------------------------------
SOUND_CLASSES: Tuple[SoundClass, ...] = (
    SoundClass("harmonic_tone", synth_harmonic_tone, (
        "a {pitch} tone with {vibrato} vibrato",
        "a sustained {timbre} note, {pitch} and wavering",
        "a {timbre} {pitch} note held steadily with {vibrato} vibrato",
        "someone playing a long {pitch} note with a {timbre} sound",
    ), "fundamental frequency 140-700 Hz (log scale)"),
    SoundClass("chirp", synth_chirp, (
        "{speed} {direction} chirps",
        "a series of {direction} frequency sweeps at a {speed} pace",
        "electronic chirp sounds sweeping {way}",
        "repeated {speed} sweeps going {way} in pitch",
    ), "sweep repetition rate 0.8-5 per second (log scale)"),
    SoundClass("siren", synth_siren, (
        "a {pitch} siren wailing {manner}",
        "an emergency siren with a {pitch} {kind} rising and falling {manner}",
        "the {kind} of a {pitch} siren passing by",
        "a siren sweeping up and down {manner}",
    ), "centre frequency 450-1400 Hz (log scale)"),
    SoundClass("noise_burst", synth_noise_burst, (
        "{pace} {shape} bursts of {band} noise",
        "short {band} noise bursts with {shape} onsets",
        "a {shape} {band} hiss that comes and goes",
        "{band} static in {pace} {shape} bursts",
    ), "noise band centre 250-2800 Hz (log scale)"),
    SoundClass("click_train", synth_click_train, (
        "a {reg} train of {speed} clicks",
        "{speed} {reg} ticking like a clock",
        "clicking at a {speed} and {reg} rate",
        "a series of {reg} clicks, {speed}",
    ), "click rate 3-50 per second (log scale)"),
    SoundClass("bell", synth_bell, (
        "a {pitch} bell {strikes} with a {ring} ring",
        "a {ring} ringing {pitch} metallic bell",
        "{pitch} bell tones, {strikes}",
        "the {ring} chime of a {pitch} bell",
    ), "strike tone 250-900 Hz (log scale)"),
    SoundClass("drum", synth_drum, (
        "{tempo} {pitch} drum hits",
        "someone beating a {pitch} drum at a {tempo} pace",
        "a {pitch} drum pounding {tempo_adv}",
        "percussive {pitch} thumps in a {tempo} rhythm",
    ), "membrane pitch 50-220 Hz (log scale)"),
    SoundClass("babble", synth_babble, (
        "{who} babbling in a {voice} tone",
        "indistinct {pace} vowel-like chatter, {voice} pitched",
        "{pace} mumbling speech sounds from {who}",
        "a {voice} murmur of {pace} syllables",
    ), "voice fundamental 90-260 Hz (log scale)"),
    SoundClass("rain", synth_rain, (
        "{intensity} rain falling {surface}",
        "the patter of {intensity} rain",
        "{intensity} rainfall with many tiny drops {surface}",
        "a {intensity} shower of raindrops",
    ), "droplet density 40-900 per second (log scale)"),
    SoundClass("engine", synth_engine, (
        "a {size} engine {state}",
        "the {pitch} hum of an engine {state}",
        "a motor {state} with a {pitch} throbbing drone",
        "{pitch} mechanical engine rumble, {state}",
    ), "firing rate 22-70 Hz (log scale)"),
    SoundClass("bird", synth_bird, (
        "a bird singing a {pace} trill",
        "{pitch} chirping of a small bird in {pace} bursts",
        "a songbird's {pace} warbling, {pitch}",
        "birdsong with {pace} {pitch} chirps",
    ), "trill syllable rate 5-18 per second (log scale)"),
    SoundClass("wind", synth_wind, (
        "{strength} wind {tone} at a {pitch} pitch",
        "a {pitch} {tone} wind",
        "wind {tone} {strength_adv}",
        "the {tone} of {strength} wind gusts",
    ), "resonance centre 180-1100 Hz (log scale)"),
    SoundClass("alarm", synth_alarm, (
        "an alarm beeping {pattern}",
        "{pitch} electronic beeps {pattern}",
        "a {pitch} alarm clock going off {pattern}",
        "repeated {speed} {pitch} beeps from an alarm",
    ), "beep frequency 500-2200 Hz (log scale)"),
    SoundClass("water_drip", synth_water_drip, (
        "{pace} water drips {place}",
        "water dripping {pace_adv} {place}",
        "drops of water falling {place} at a {pace} rate",
        "a {pace} dripping sound {place}",
    ), "drip rate 1.2-7 per second (log scale)"),
    SoundClass("phone_ring", synth_phone_ring, (
        "a telephone ringing with {cadence} rings",
        "a {pitch} phone ring trilling",
        "the {pitch} trill of a ringing phone",
        "{cadence} {pitch} telephone rings",
    ), "lower ring tone 350-1100 Hz (log scale)"),
    SoundClass("insect", synth_insect, (
        "a {kind} {verb} at a {pace} pulse rate",
        "{pace} {verb} of an insect",
        "an insect {verb} with {pace} pulses",
        "a {kind} {verb} {pace_adv} in the night",
    ), "pulse rate 15-90 Hz (log scale)"),
    SoundClass("crackle", synth_crackle, (
        "a {intensity} fire crackling",
        "crackling and popping of a {intensity} campfire",
        "{intensity} crackles from burning wood",
        "wood burning in a {intensity} fireplace with sharp pops",
    ), "crackle density 8-80 per second (log scale)"),
    SoundClass("heartbeat", synth_heartbeat, (
        "a {tempo} heartbeat",
        "the {tempo} thumping of a heart",
        "a heart beating {tempo_adv}",
        "{tempo} lub-dub heart sounds",
    ), "heart rate 50-150 beats per minute (linear)"),
)

LABELS: Tuple[str, ...] = tuple(c.name for c in SOUND_CLASSES)


def draw_variant(rng: np.random.Generator, held_out: bool) -> float:
    """Draw a variant coordinate ``u`` from the train or the held-out (test) ranges.

    Args:
        rng: random generator of the clip.
        held_out: True for the test pool (``[0.4, 0.6)``), False for train/valid.

    Returns:
        u in [0, 1].
    """
    ranges = TEST_U_RANGES if held_out else TRAIN_U_RANGES
    widths = np.array([b - a for a, b in ranges])
    v = rng.uniform(0.0, float(widths.sum()))
    for (a, _), w in zip(ranges, widths):
        if v < w:
            return float(a + v)
        v -= w
    return float(ranges[-1][1])
