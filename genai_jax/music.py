"""Four-voice symbolic music: piano rolls, their token encoding, MIDI files and a synthesiser.

A **roll** is int32 ``[T, V]`` (batched ``[N, T, V]``): the MIDI pitch voice ``v`` sounds at
sixteenth-note step ``t``, or ``REST`` (-1). Voices are ordered soprano, alto, tenor, bass. As in
Coconet's JSB chorale data, a pitch held over consecutive steps of one voice is one note, so a
repeated note is merged with its predecessor (the grid does not mark re-articulation).

**Tokens** (what the masked transformer models): time-major, the ``V`` voices of step 0, then of
step 1, ...; token 0 = rest, token ``1 + p - LOW`` = pitch ``p`` in ``[LOW, HIGH]`` (C2..A5, the
range of the chorales' four voices, as in Coconet). So a window of ``S`` steps is ``S * V`` tokens
and ``VOCAB_SIZE`` = 47.

**Audio** (``render``): a simple additive synthesiser, 16 kHz by default: each note is the sum of
its first four harmonics with amplitudes 1, 1/2, 1/3, 1/4, under a 10 ms linear attack, an
exponential decay (time constant 0.6 s) and a 20 ms linear release at the note's end; voices are
summed and scaled by 0.9 / (V * 25/12) (25/12 bounds one note's harmonics), so the mix never clips. Tempo: ``QUARTER_S`` = 0.6 s per
quarter note (100 bpm), 0.15 s per sixteenth.

**MIDI** (``midi_bytes``): a standard MIDI file, format 0 (one track), 480 ticks per quarter, one
channel per voice (program 0, acoustic grand piano), tempo 100 bpm; written here in a few lines
(the format is fixed and small); ``music21`` reads it back in the tests.
"""

import struct

import numpy as np

REST = -1
LOW, HIGH = 36, 81  # MIDI pitches C2 and A5, inclusive
NUM_PITCHES = HIGH - LOW + 1
VOCAB_SIZE = NUM_PITCHES + 1  # + rest (token 0)
VOICES = 4
STEPS_PER_QUARTER = 4  # a sixteenth-note grid
QUARTER_S = 0.6  # 100 bpm
VOICE_NAMES = ("soprano", "alto", "tenor", "bass")


def to_tokens(roll):
  """roll int [..., T, V] (MIDI pitch or REST) -> int32 [..., T * V] tokens (numpy or jnp)."""
  xp = _xp(roll)
  tokens = xp.where(roll == REST, 0, roll - LOW + 1).astype(xp.int32)
  return tokens.reshape(*roll.shape[:-2], -1)


def from_tokens(tokens, voices: int = VOICES):
  """int [..., T * V] tokens -> roll int32 [..., T, V]; a token outside the vocabulary (e.g. a
  [MASK] id) is a rest. Trailing tokens that do not fill a step are dropped."""
  xp = _xp(tokens)
  steps = tokens.shape[-1] // voices
  tokens = tokens[..., :steps * voices].reshape(*tokens.shape[:-1], steps, voices)
  valid = (tokens >= 1) & (tokens < VOCAB_SIZE)
  return xp.where(valid, tokens - 1 + LOW, REST).astype(xp.int32)


def _xp(x):
  if isinstance(x, np.ndarray) or np.isscalar(x):
    return np
  import jax.numpy as jnp
  return jnp


def notes(voice: np.ndarray) -> list:
  """One voice int [T] -> its notes as (pitch, start step, length in steps), rests left out."""
  voice = np.asarray(voice)
  out, t = [], 0
  while t < len(voice):
    end = t + 1
    while end < len(voice) and voice[end] == voice[t]:
      end += 1
    if voice[t] != REST:
      out.append((int(voice[t]), t, end - t))
    t = end
  return out


# --- MIDI ----------------------------------------------------------------------------------------

TICKS_PER_QUARTER = 480


def _vlq(n: int) -> bytes:
  """MIDI variable-length quantity: 7 bits per byte, most significant first."""
  out = [n & 0x7F]
  n >>= 7
  while n:
    out.append(0x80 | (n & 0x7F))
    n >>= 7
  return bytes(reversed(out))


def midi_bytes(roll: np.ndarray, velocity: int = 80) -> bytes:
  """roll int [T, V] -> the bytes of a format-0 standard MIDI file (voice v on channel v)."""
  ticks = TICKS_PER_QUARTER // STEPS_PER_QUARTER
  events = []  # (tick, order: offs before ons at the same tick, message bytes)
  for v in range(roll.shape[1]):
    for pitch, start, length in notes(roll[:, v]):
      events.append((start * ticks, 1, bytes([0x90 | v, pitch, velocity])))
      events.append(((start + length) * ticks, 0, bytes([0x80 | v, pitch, 0])))
  events.sort(key=lambda e: (e[0], e[1]))
  tempo = int(QUARTER_S * 1e6)
  track = bytearray(b"\x00\xff\x51\x03" + tempo.to_bytes(3, "big"))
  track += b"\x00\xff\x58\x04\x04\x02\x18\x08"  # 4/4 time signature
  for v in range(roll.shape[1]):
    track += bytes([0, 0xC0 | v, 0])  # program 0 on every channel
  now = 0
  for tick, _, msg in events:
    track += _vlq(tick - now) + msg
    now = tick
  track += b"\x00\xff\x2f\x00"  # end of track
  header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS_PER_QUARTER)
  return header + b"MTrk" + struct.pack(">I", len(track)) + bytes(track)


# --- audio ---------------------------------------------------------------------------------------

def render(roll: np.ndarray, sample_rate: int = 16_000) -> np.ndarray:
  """roll int [T, V] -> float32 [T * step_samples] mono waveform in [-1, 1] (additive
  synthesis; see the module docstring)."""
  step = int(round(QUARTER_S / STEPS_PER_QUARTER * sample_rate))
  out = np.zeros(roll.shape[0] * step, np.float64)
  attack, release = int(0.01 * sample_rate), int(0.02 * sample_rate)
  for v in range(roll.shape[1]):
    for pitch, start, length in notes(roll[:, v]):
      n = length * step
      t = np.arange(n) / sample_rate
      f0 = 440.0 * 2.0 ** ((pitch - 69) / 12.0)
      tone = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 5) if k * f0 < sample_rate / 2)
      env = np.exp(-t / 0.6)
      env[:attack] *= np.linspace(0.0, 1.0, min(attack, n), endpoint=False)
      env[-release:] *= np.linspace(1.0, 0.0, min(release, n))
      out[start * step:start * step + n] += tone * env
  # |one note| <= 1 + 1/2 + 1/3 + 1/4 = 25/12, so the scaled mix of V voices stays within 0.9.
  return (out * (0.9 / (roll.shape[1] * 25.0 / 12.0))).astype(np.float32)


# --- pictures ------------------------------------------------------------------------------------

VOICE_COLOURS = np.array([[230, 60, 60], [60, 190, 80], [70, 120, 240], [240, 170, 40]], np.float32)


def roll_image(roll: np.ndarray, prompt_steps: int = 0, cell: int = 3) -> np.ndarray:
  """roll int [T, V] -> float32 [NUM_PITCHES * cell, T * cell, 3] in [-1, 1]: pitch upwards,
  time rightwards, one colour per voice (soprano red, alto green, tenor blue, bass orange); the
  first ``prompt_steps`` steps (a given prompt) on a lighter background, bar lines every 16 steps."""
  steps = roll.shape[0]
  img = np.full((NUM_PITCHES, steps, 3), 25.0, np.float32)
  img[:, :prompt_steps] = 70.0
  img[:, ::4 * STEPS_PER_QUARTER] += 25.0  # bar lines (4/4)
  for v in range(roll.shape[1]):
    t = np.nonzero(roll[:, v] != REST)[0]
    p = np.clip(roll[t, v], LOW, HIGH)
    img[HIGH - p, t] = VOICE_COLOURS[v % len(VOICE_COLOURS)]
  img = np.repeat(np.repeat(img, cell, 0), cell, 1)
  return img / 127.5 - 1.0
