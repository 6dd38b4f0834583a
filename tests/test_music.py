"""Symbolic music: roll <-> tokens, MIDI read back by music21, the synthesiser, the PianoRoll
sample kind, the chorale builders and batches, the statistics, and the masked model end to end."""

import json
import os

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.io.wavfile

from genai_jax import music, samples
from genai_jax.data import music as music_data
from genai_jax.errors import ConfigError
from genai_jax.eval import music_metrics
from tests.helpers import override

R = music.REST


def _roll(*voices):
  """Columns (one list per voice, equal lengths) -> int32 [T, V]."""
  return np.array(voices, np.int32).T


def test_tokens_round_trip_and_vocab():
  roll = _roll([72, 72, R, 74], [67, 67, 65, 65], [60, 60, 60, 59], [36, 48, 81, R])
  tokens = music.to_tokens(roll)
  assert tokens.shape == (16,) and tokens.max() < music.VOCAB_SIZE and tokens[8 + 0] == 0
  np.testing.assert_array_equal(music.from_tokens(tokens), roll)
  np.testing.assert_array_equal(np.asarray(music.from_tokens(jnp.asarray(tokens))), roll)
  masked = tokens.copy()
  masked[1] = music.VOCAB_SIZE  # a [MASK] id reads as a rest
  assert music.from_tokens(masked)[0, 1] == R
  vocab = music_data.Vocab()
  assert vocab.decode(tokens[:4]) == "C5 G4 C4 C2"
  sample = vocab.as_sample(jnp.asarray(tokens)[None], prompt_len=4)
  assert isinstance(sample, samples.PianoRoll) and sample.prompt_steps == 1
  with pytest.raises(ConfigError, match="multiple of 4"):
    vocab.as_sample(jnp.asarray(tokens)[None], prompt_len=3)
  assert music.notes(roll[:, 0]) == [(72, 0, 2), (74, 3, 1)]


def test_midi_reads_back_in_music21_and_render_plays_the_pitches():
  from music21 import converter
  roll = _roll([72, 72, 74, 74, 76, 76, 76, 76], [67] * 8, [60, 60, 60, 60, R, R, 59, 59],
               [48] * 4 + [43] * 4)
  score = converter.parseData(music.midi_bytes(roll), format="midi")
  got = sorted((p.midi, float(n.offset), float(n.quarterLength))  # chords: notes struck together
               for n in score.flatten().notes for p in n.pitches)
  want = sorted((p, s / 4, n / 4) for v in range(4) for p, s, n in music.notes(roll[:, v]))
  assert got == want

  one = np.full((16, 1), 69, np.int32)  # A4 for one bar
  wave = music.render(one, 16_000)
  assert wave.shape == (16 * 2400,) and np.abs(wave).max() <= 0.9
  spectrum = np.abs(np.fft.rfft(wave))
  assert abs(np.argmax(spectrum) * 16_000 / len(wave) - 440.0) < 2.0


def test_piano_roll_kind_writes_midi_wav_and_png(tmp_path):
  rolls = np.stack([_roll([72] * 8, [67] * 8, [60] * 8, [48] * 8),
                    _roll([74] * 8, [R] * 8, [62] * 8, [50] * 8)])
  path = samples.write("chorales", samples.PianoRoll(jnp.asarray(rolls), 2), str(tmp_path), 5)
  assert path.endswith("chorales/step_0000005.png") and os.path.getsize(path) > 100
  for sub in ("step_0000005", "latest"):
    for i in range(2):
      rate, pcm = scipy.io.wavfile.read(tmp_path / "chorales" / sub / f"{i}.wav")
      assert rate == 16_000 and pcm.dtype == np.int16 and len(pcm) == 8 * 2400
      assert (tmp_path / "chorales" / sub / f"{i}.mid").read_bytes()[:4] == b"MThd"


def test_statistics_on_hand_built_rolls():
  # Soprano C5 -> D5 over bass F4 -> G4: one parallel fifth; alto and tenor hold (no motion).
  roll = _roll([72, 74, 74], [67, 67, 67], [64, 64, 64], [65, 67, 67])
  fifths, octaves = music_metrics.parallels(roll[None])
  # pairs that both move at the first boundary: soprano-bass only
  assert (fifths, octaves) == (1.0, 0.0)
  contrary = _roll([72, 74], [67, 67], [64, 64], [65, 64])  # fifth -> contrary motion
  assert music_metrics.parallels(contrary[None]) == (0.0, 0.0)
  octave = _roll([72, 74], [R, R], [R, R], [60, 62])
  assert music_metrics.parallels(octave[None]) == (0.0, 1.0)
  # the bass above the tenor at 1 of the 3 steps (soprano-alto, alto-tenor never cross)
  crossing = _roll([72, 72, 72], [67, 67, 67], [60, 60, 60], [55, 62, 55])
  assert music_metrics.crossings(crossing[None]) == pytest.approx(1 / 9)
  np.testing.assert_allclose(music_metrics.voice_range(crossing[None]), [0, 0, 0, 7])
  np.testing.assert_allclose(music_metrics.notes_per_voice(crossing[None]), np.array([1, 1, 1, 3]) * 16 / 3)
  c_major = _roll([60, 62, 64, 65], [R] * 4, [R] * 4, [R] * 4)[None]
  assert music_metrics.pc_distance(c_major, c_major) == 0.0
  tritone_up = np.where(c_major == R, R, c_major + 6)  # F# G# A# B: no class in common
  assert music_metrics.pc_distance(c_major, tritone_up) == 1.0
  half = np.where(c_major == R, R, c_major + 1)  # C# D# F F#: only F in common
  assert music_metrics.pc_distance(c_major, half) == 0.75

  rng = np.random.default_rng(0)
  real = rng.choice([R, 60, 62, 64, 67], size=(3, 32, 4)).astype(np.int32)
  shuffled = music_metrics.shuffled(real, seed=1)
  for r, s in zip(real, shuffled):
    for v in range(4):  # the same steps per pitch in each voice, in another order
      assert sorted(r[:, v]) == sorted(s[:, v])
  assert not np.array_equal(real, shuffled)
  stats = music_metrics.statistics(real, real)
  assert stats["pc_tv"] == 0.0 and "parallel_fifths" in music_metrics.table({"real": stats})


def test_bach_chorales_tiny_builder_and_batches(tfds_dir):
  from genai_jax.data import music as music_data
  from genai_jax.data import pipelines
  from genai_jax.data.builders import bach_chorales
  cfg = override(_chorale_config().data, {"seq_len": 32, "transpose": 3})
  builder = pipelines.get_builder(cfg)
  files = sum(bach_chorales.split_files("tiny").values(), [])
  names = {os.path.basename(f) for f in files}
  train = music_data.split_rolls(cfg, "train")
  val = music_data.split_rolls(cfg, "validation")
  assert 0 < len(val) and len(train) + len(val) <= len(files)
  assert builder.info.splits["train"].num_examples == len(train)
  for r in train + val:
    assert r.shape[1] == 4 and r.dtype == np.int32
    sounding = r[r != R]
    assert music.LOW <= sounding.min() and sounding.max() <= music.HIGH
  keys = [ex["file"].decode() for ex in builder.as_data_source("validation")]
  assert all(bach_chorales.is_validation(k) and k in names for k in keys)

  first = next(music_data.music_batches(cfg, "train", 8, train=True, seed=0, start_step=0))
  again = list(zip(range(3), music_data.music_batches(cfg, "train", 8, train=True, seed=0)))[2][1]
  resumed = next(music_data.music_batches(cfg, "train", 8, train=True, seed=0, start_step=2))
  assert first["tokens"].shape == (8, 33) and first["tokens"].dtype == np.int32
  np.testing.assert_array_equal(again["tokens"], resumed["tokens"])
  assert first["tokens"].max() < music.VOCAB_SIZE
  with pytest.raises(ConfigError, match="multiple of the 4 voices"):
    music_data.window_steps(override(cfg, {"seq_len": 30}))
  with pytest.raises(ConfigError, match="has no config 'nonesuch'.*bach_chorales/tiny"):
    pipelines.get_builder(override(cfg, {"name": "bach_chorales/nonesuch"}))


def _chorale_config(**overrides):
  from experiments.configs import bach_chorales
  c = bach_chorales.get_config("demo")
  c.data.name = "bach_chorales/tiny"
  c.model.update(num_layers=1, num_heads=2, d_model=32)
  c.data.seq_len = 32
  c.sample.update(prompt_len=8, iterations=4)
  c.music_stats.num_samples = 8
  c.update(batch_size=8, num_steps=2, log_every=1, eval_every=2, checkpoint_every=2,
           eval_batches=1, num_samples=2)
  return override(c, overrides)


@pytest.mark.slow
def test_masked_model_of_chorales_trains_writes_midi_and_statistics(tfds_dir, tmp_path):
  from experiments import bach_chorales as experiment
  from genai_jax.train.loop import train_and_evaluate
  config, workdir = _chorale_config(), str(tmp_path / "run")
  result = train_and_evaluate(config, workdir)
  assert np.isfinite(result["eval/loss"])
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    (baseline,) = [r for r in map(json.loads, f) if r["split"] == "baseline"]
  assert 0.5 < baseline["unigram_loss"] < np.log(music.VOCAB_SIZE)
  latest = os.path.join(workdir, "samples", "latest")
  assert sorted(os.listdir(latest)) == ["0.mid", "0.wav", "1.mid", "1.wav"]
  stats = experiment.music_statistics(config, workdir)
  assert set(stats) >= {"real", "generated", "shuffled"} and stats["step"] == 2
  assert stats["window_steps"] == 8
  assert os.path.exists(os.path.join(workdir, "unconditional", "latest.png"))
  assert "| parallel_fifths |" in open(os.path.join(workdir, "music_stats.md")).read()


def test_bach_chorales_audio_tiny_builder(tfds_dir):
  from genai_jax.data import pipelines
  from genai_jax.data.builders import bach_chorales
  builder = pipelines.get_builder(override(_chorale_config().data,
                                           {"name": "bach_chorales_audio/tiny"}))
  ex = builder.as_data_source("train")[0]
  assert ex["audio"].shape == (bach_chorales.CLIP_SAMPLES,) and ex["audio"].dtype == np.int16
  assert 0 < np.abs(ex["audio"]).max() < 32767
  assert pipelines.recorded_rate(builder, "audio") == bach_chorales.SAMPLE_RATE  # from metadata


@pytest.mark.slow
def test_maskgit_choice_temperature_randomises_the_order_of_commitment():
  import jax
  from genai_jax import generate
  mask = 10
  def logits_fn(tokens):  # each position prefers the token "number already committed", so a
    # committed value tells the round it was sampled in; position 0 is by far the most confident
    committed = (tokens != mask).sum(-1)
    prefer = jax.nn.one_hot(committed, mask + 1)[:, None, :] * 5.0
    return jnp.broadcast_to(prefer, (tokens.shape[0], 8, mask + 1)).at[:, 0].multiply(4.0)

  def first_value(choice_temperature, seed):
    out = generate.maskgit(logits_fn, jnp.full((1, 8), mask, jnp.int32), mask, 4,
                           jax.random.PRNGKey(seed), choice_temperature=choice_temperature)
    assert not (out == mask).any()
    return int(out[0, 0])
  assert {first_value(0.0, s) for s in range(6)} == {0}  # confidence first: committed at once
  assert {first_value(50.0, s) for s in range(6)} != {0}  # noised order: sometimes later
