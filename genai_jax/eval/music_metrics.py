"""Statistics of four-voice piano rolls, to put generated chorales beside real ones.

All functions take rolls int [N, T, V] (MIDI pitch or -1 rest, voices soprano..bass; see
``genai_jax.music``), pooled over the N rolls:

* ``pitch_classes``: the histogram of the 12 pitch classes over notes (onsets, not steps);
  ``pc_distance`` between two sets is the total-variation distance 0.5 * sum |p - q| in [0, 1].
* ``notes_per_voice``: mean notes per voice per 16 steps (one 4/4 bar); a held pitch is one note.
* ``voice_range``: per voice, the mean over rolls of (highest - lowest pitch) in semitones.
* ``crossings``: the share of steps, among those where two adjacent voices both sound, at which
  the lower voice is above the upper one.
* ``parallels``: among the step boundaries at which two voices (any of the 6 pairs) both move
  (each sounds before and after and changes pitch), the share that are parallel fifths or octaves:
  the interval is a perfect fifth (7 semitones mod 12) or an octave/unison (0 mod 12) both before
  and after, and the voices move in the same direction.

``shuffled`` is the baseline: each voice's notes and rests (pitch and length) of each real roll in
a random order, so pitch content, ranges and rhythm per voice are kept while harmony and voice
leading go (two notes of one pitch that land side by side merge into one held note).
"""

import numpy as np

from genai_jax import music

REST = music.REST


def pitch_classes(rolls: np.ndarray) -> np.ndarray:
  """float64 [12]: the pitch-class histogram of the notes of ``rolls`` (sums to 1; zeros if none)."""
  counts = np.zeros(12)
  for roll in np.asarray(rolls):
    for v in range(roll.shape[1]):
      for pitch, _, _ in music.notes(roll[:, v]):
        counts[pitch % 12] += 1
  return counts / max(counts.sum(), 1)


def pc_distance(a: np.ndarray, b: np.ndarray) -> float:
  """Total-variation distance between the pitch-class histograms of two sets of rolls."""
  return float(0.5 * np.abs(pitch_classes(a) - pitch_classes(b)).sum())


def notes_per_voice(rolls: np.ndarray) -> np.ndarray:
  """float64 [V]: mean notes per voice per 16 steps."""
  rolls = np.asarray(rolls)
  counts = np.array([[len(music.notes(r[:, v])) for v in range(r.shape[1])] for r in rolls])
  return counts.sum(0) / (rolls.shape[0] * rolls.shape[1] / 16.0)


def voice_range(rolls: np.ndarray) -> np.ndarray:
  """float64 [V]: per voice, the mean over rolls of its range in semitones (rolls in which the
  voice only rests are left out)."""
  rolls = np.asarray(rolls)
  out = []
  for v in range(rolls.shape[2]):
    spans = [r[r != REST].max() - r[r != REST].min() for r in rolls[:, :, v] if (r != REST).any()]
    out.append(float(np.mean(spans)) if spans else 0.0)
  return np.array(out)


def crossings(rolls: np.ndarray) -> float:
  """Share of (step, adjacent voice pair) with both sounding where the lower voice is higher."""
  rolls = np.asarray(rolls)
  upper, lower = rolls[:, :, :-1], rolls[:, :, 1:]
  both = (upper != REST) & (lower != REST)
  return float((both & (lower > upper)).sum() / max(both.sum(), 1))


def parallels(rolls: np.ndarray) -> tuple:
  """(share of parallel fifths, share of parallel octaves/unisons) among the moves of voice
  pairs; see the module docstring."""
  rolls = np.asarray(rolls)
  moves = fifths = octaves = 0
  voices = rolls.shape[2]
  for i in range(voices):
    for j in range(i + 1, voices):
      a0, a1 = rolls[:, :-1, i], rolls[:, 1:, i]
      b0, b1 = rolls[:, :-1, j], rolls[:, 1:, j]
      sounding = (a0 != REST) & (a1 != REST) & (b0 != REST) & (b1 != REST)
      move = sounding & (a0 != a1) & (b0 != b1)
      same_way = np.sign(a1 - a0) == np.sign(b1 - b0)
      before, after = (a0 - b0) % 12, (a1 - b1) % 12
      moves += int(move.sum())
      fifths += int((move & same_way & (before == 7) & (after == 7)).sum())
      octaves += int((move & same_way & (before == 0) & (after == 0)).sum())
  return fifths / max(moves, 1), octaves / max(moves, 1)


def shuffled(rolls: np.ndarray, seed: int = 0) -> np.ndarray:
  """The shuffled-notes baseline of ``rolls`` (same shape): each voice's notes and rests (as
  runs of one value) in a random order."""
  rng = np.random.default_rng(seed)
  out = np.asarray(rolls).copy()
  for r in out:
    for v in range(r.shape[1]):
      col = r[:, v]
      cuts = np.flatnonzero(np.diff(col)) + 1
      runs = np.split(col.copy(), cuts)
      r[:, v] = np.concatenate([runs[k] for k in rng.permutation(len(runs))])
  return out


def statistics(rolls: np.ndarray, reference: np.ndarray) -> dict:
  """{name: float} for ``rolls``: ``pc_tv`` (pitch-class distance to ``reference``, e.g. the
  training rolls), ``notes_per_bar_<voice>``, ``range_<voice>``, ``crossings``,
  ``parallel_fifths``, ``parallel_octaves``."""
  out = {"pc_tv": pc_distance(rolls, reference)}
  names = music.VOICE_NAMES
  for v, x in enumerate(notes_per_voice(rolls)):
    out[f"notes_per_bar_{names[v]}"] = float(x)
  for v, x in enumerate(voice_range(rolls)):
    out[f"range_{names[v]}"] = float(x)
  out["crossings"] = crossings(rolls)
  out["parallel_fifths"], out["parallel_octaves"] = parallels(rolls)
  return out


def table(rows: dict) -> str:
  """A Markdown table of ``{set name: statistics(...)}`` (one column per set)."""
  names = list(rows)
  keys = list(rows[names[0]])
  lines = ["| statistic | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
  for k in keys:
    lines.append(f"| {k} | " + " | ".join(f"{rows[n][k]:.3f}" for n in names) + " |")
  return "\n".join(lines)
