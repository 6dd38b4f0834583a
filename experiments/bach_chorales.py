"""Bach chorales: a Coconet-style masked model of four-voice piano rolls; see the config.

  python -m experiments.bach_chorales --config=experiments/configs/bach_chorales.py:demo --workdir=workdirs/chorales

After training (and on every rerun, which resumes first) it draws ``music_stats.num_samples``
unconditional rolls from the last checkpoint, writes them under ``<workdir>/unconditional/`` (MIDI,
WAV, piano-roll PNG) and compares them with real validation windows of the same length and with a
shuffled-notes baseline (``genai_jax.eval.music_metrics``): ``<workdir>/music_stats.json`` and a
Markdown table in ``<workdir>/music_stats.md``.
"""

import json
import os

import numpy as np

from experiments import main


def real_windows(data_cfg, split: str, num: int) -> np.ndarray:
  """int32 [n <= num, seq_len / 4, 4]: the first ``num`` non-overlapping windows of ``split``'s
  pieces, in file order (the real side of the comparison)."""
  from genai_jax.data import music as music_data
  steps = music_data.window_steps(data_cfg)
  out = [r[o:o + steps] for r in music_data.split_rolls(data_cfg, split)
         for o in range(0, len(r) - steps + 1, steps)]
  return np.stack(out[:num])


def music_statistics(config, workdir: str) -> dict:
  """{'real' | 'generated' | 'shuffled': statistics} of the latest checkpoint of ``workdir``;
  writes the unconditional samples, ``music_stats.json`` and ``music_stats.md``."""
  from genai_jax import music, samples, tasks
  from genai_jax.data import music as music_data
  from genai_jax.eval import music_metrics, sampling
  from genai_jax.train import sharding
  from genai_jax.train import state as state_lib
  mesh = sharding.make_mesh(config.mesh.data, config.mesh.fsdp)
  task = tasks.get_task(config)
  step, state = state_lib.restore(config, workdir, None, mesh, task=task)
  n, seed = config.music_stats.num_samples, config.music_stats.seed
  fake = sampling.generate(task, state, n, seed=seed, batch_size=min(n, 64))
  samples.write("unconditional", samples.take(fake, min(n, 8)), workdir, step)
  real = real_windows(config.data, config.data.eval_split, n)
  train = [r for r in music_data.split_rolls(config.data, config.data.train_split)]
  reference = np.concatenate(train)[None]  # every note of the training pieces
  rows = {"real": music_metrics.statistics(real, reference),
          "generated": music_metrics.statistics(np.asarray(fake.pitches), reference),
          "shuffled": music_metrics.statistics(music_metrics.shuffled(real, seed), reference)}
  result = {"step": int(step), "num_generated": int(n), "num_real": int(len(real)),
            "window_steps": int(real.shape[1]), **rows}
  with open(os.path.join(workdir, "music_stats.json"), "w") as f:
    json.dump(result, f, indent=1)
  md = (f"Step {step}: {n} unconditional samples vs {len(real)} real {config.data.eval_split} "
        f"windows of {real.shape[1]} sixteenths ({music.VOICES} voices); pc_tv against the "
        f"train split.\n\n" + music_metrics.table(rows) + "\n")
  with open(os.path.join(workdir, "music_stats.md"), "w") as f:
    f.write(md)
  print(md, flush=True)
  return result


if __name__ == "__main__":
  main.run("experiments/configs/bach_chorales.py", after=music_statistics)
