"""WaveGAN (the GAN task on audio); see experiments/configs/wavegan.py for the presets.

  python -m experiments.wavegan --config=experiments/configs/wavegan.py:chorales_demo --workdir=workdirs/wavegan_chorales

After training (and on every rerun, which resumes first) it scores the last checkpoint with
``fd_logmel`` (``genai_jax.eval.audio_metrics``) against the real clips of ``eval_gen.real_split``,
beside two reference points scored the same way: Gaussian white noise at the real clips' RMS
level (no model) and as many real clips of the training split (the real-vs-real floor at this
sample size). Prints a table and writes ``<workdir>/fd_logmel.json``.
"""

import json
import os

from experiments import main


def fd_logmel_report(config, workdir: str) -> dict:
  """{'step', 'num_clips', 'generated', 'white_noise', 'real_train'}: fd_logmel of each set
  against ``eval_gen.num_samples`` real clips of ``eval_gen.real_split`` (default
  ``data.eval_split``), for ``workdir``'s latest checkpoint; also written to fd_logmel.json."""
  from genai_jax import tasks
  from genai_jax.eval import audio_evaluator, audio_metrics, sampling
  from genai_jax.train import sharding
  from genai_jax.train import state as state_lib
  mesh = sharding.make_mesh(config.mesh.data, config.mesh.fsdp)
  task = tasks.get_task(config)
  step, state = state_lib.restore(config, workdir, None, mesh, task=task)
  split = config.eval_gen.get("real_split", "") or config.data.eval_split
  real = audio_evaluator.real_audio(config.data, split, config.eval_gen.num_samples)
  n = len(real)
  fake = sampling.generate(task, state, n, seed=config.seed, batch_size=config.batch_size)
  train = audio_evaluator.real_audio(config.data, config.data.train_split, n)
  rate = fake.sample_rate
  feats = lambda w: audio_metrics.logmel_features(w, rate)
  ref = feats(real)
  result = {"step": int(step), "num_clips": n, "real_split": split,
            "generated": audio_metrics.fd_logmel(ref, feats(fake.waveforms)),
            "white_noise": audio_metrics.fd_logmel(ref, feats(audio_metrics.white_noise(real))),
            "real_train": audio_metrics.fd_logmel(ref, feats(train))}
  with open(os.path.join(workdir, "fd_logmel.json"), "w") as f:
    json.dump(result, f, indent=1)
  print(f"fd_logmel at step {step}, {n} clips each against {n} real {split} clips "
        f"(log-mel statistics; not FAD):\n"
        f"  generated (WaveGAN)    {result['generated']:10.2f}\n"
        f"  white noise            {result['white_noise']:10.2f}\n"
        f"  real {config.data.train_split} clips       {result['real_train']:10.2f}", flush=True)
  return result


if __name__ == "__main__":
  main.run("experiments/configs/wavegan.py", after=fd_logmel_report)
