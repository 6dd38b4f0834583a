"""One stage of ``scripts/device_train.sh``: trains a model end to end, resumes it once, and measures
its loop rate beside its bare step rate and its final quality. Imports no TensorFlow.

  python scripts/device_train.py --model=gan --data_dir=.device/tfds --out=OUT [--scale=gpu]
  python scripts/device_train.py --model=gpt2 --out=OUT     # GPT-2 small step: MFU, cuDNN attention
  python scripts/device_train.py --table --out=OUT          # OUT/device_train.md from the stages

Models (``MODELS``): ``gan`` (dcgan_celeba.py:cond_mnist, the class-conditional SNGAN on full
MNIST), ``vae`` (vae_mnist.py:iwae) and ``gpt`` (gpt_shakespeare.py:plays_gpt, the baby GPT on
the plays), on the datasets ``scripts/device_data.py`` prepared (its ``datasets.json`` says when an
embedded stand-in replaced a real one). Each trains ``n1`` steps in a fresh workdir, then runs the
same command with ``num_steps=n2``, which must resume from step ``n1`` (``resumed from`` in its
log). Figures: the loop's steps/s (median of the ``perf`` rows after each run's first interval,
which holds the compile), the bare step's (``benchmarks.accelerator.measure``: the same config on
a fixed random batch), their ratio, and the last ``eval`` row (GAN: mean per-class accuracy of its
samples under the MNIST classifier, ``experiments/class_accuracy.py``). Each stage writes
``OUT/<model>.json`` and its logs, so a stage cut off by ``timeout`` leaves the others' rows.

Sizing (``SCALES``): see ``scripts/device_train.sh``; ``--scale=cpu`` shrinks every run to a few
steps (and the GPT to 2 layers) so the whole flow runs on a laptop CPU in minutes.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

MODELS = {  # model -> (experiment module, config file, preset, dataset kind in datasets.json)
    "gan": ("experiments.dcgan_celeba", "experiments/configs/dcgan_celeba.py", "cond_mnist", "mnist"),
    "vae": ("experiments.vae_mnist", "experiments/configs/vae_mnist.py", "iwae", "mnist"),
    "gpt": ("experiments.gpt_shakespeare", "experiments/configs/gpt_shakespeare.py", "plays_gpt", "text"),
}

# Per scale and model: n1 (first run), n2 (the resumed run's num_steps) and config overrides
# (both runs; ``final`` only on the resumed run). The arithmetic is in device_train.sh.
SCALES = {
    "gpu": {
        "gan": dict(n1=2_500, n2=5_000, every={"log_every": 250, "eval_every": 2_500,
                                               "checkpoint_every": 2_500}),
        "vae": dict(n1=4_000, n2=8_000, every={"log_every": 400, "eval_every": 4_000,
                                               "checkpoint_every": 4_000},
                    first={"objective.iw_samples": 500}, final={"objective.iw_samples": 5_000}),
        "gpt": dict(n1=2_500, n2=5_000, every={"log_every": 250, "eval_every": 2_500,
                                               "checkpoint_every": 2_500,
                                               "optimizer.decay_steps": 5_000,
                                               "model.dtype": "bfloat16"}),
    },
    "cpu": {
        "gan": dict(n1=6, n2=12, every={"log_every": 3, "eval_every": 6, "checkpoint_every": 6,
                                        "batch_size": 16, "eval_batches": 1, "num_samples": 20}),
        "vae": dict(n1=20, n2=40, every={"log_every": 10, "eval_every": 20, "checkpoint_every": 20,
                                         "eval_batches": 2, "objective.iw_chunk": 10,
                                         "objective.iw_samples": 20}),
        "gpt": dict(n1=10, n2=20, every={"log_every": 5, "eval_every": 10, "checkpoint_every": 10,
                                         "optimizer.decay_steps": 20, "batch_size": 8,
                                         "eval_batches": 2, "model.num_layers": 2,
                                         "model.d_model": 64, "model.num_heads": 2,
                                         "data.seq_len": 64, "sample.length": 32,
                                         "sample.prompt_len": 8}),
    },
}
CPU_CLASSIFIER_STEPS = 30
# Quality figures picked from the last eval row (all of its scalars are kept in the JSON too).
QUALITY = {"gan": (), "vae": ("nll_k", "neg_elbo"), "gpt": ("loss",)}


def _parse(value: str):
  for cast in (int, float):
    try:
      return cast(value)
    except ValueError:
      pass
  return value


def overrides(model: str, scale: str, data_dir: str, run: int) -> dict:
  """The ``--config.KEY`` overrides of ``model``'s run 1 (first) or 2 (resumed)."""
  s = SCALES[scale][model]
  kind = MODELS[model][3]
  manifest = os.path.join(data_dir, "datasets.json")
  names = json.load(open(manifest)) if os.path.exists(manifest) else {}
  o = {"num_steps": s["n1"] if run == 1 else s["n2"], "data.data_dir": os.path.abspath(data_dir),
       **s["every"], **(s.get("first", {}) if run == 1 else s.get("final", {}))}
  if names.get(kind):
    o["data.name"] = names[kind]
  return o


def cfg_data_name(model: str, scale: str, data_dir: str) -> str:
  return config_of(model, overrides(model, scale, data_dir, 2)).data.name


def config_of(model: str, o: dict):
  """The experiment's config with overrides ``o`` applied (as ``--config.KEY=VALUE`` would)."""
  import importlib
  _, path, preset, _ = MODELS[model]
  from genai_jax import config_utils
  return config_utils.override(
      importlib.import_module(path[:-3].replace("/", ".")).get_config(preset), o)


def _train(model: str, workdir: str, o: dict, log: str, timeout: float) -> float:
  module, path, preset, _ = MODELS[model]
  cmd = [sys.executable, "-m", module, f"--config={path}:{preset}", f"--workdir={workdir}"]
  cmd += [f"--config.{k}={v}" for k, v in o.items()]
  print("+ " + " ".join(cmd), flush=True)
  t = time.perf_counter()
  with open(log, "w") as f:
    proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=REPO, timeout=timeout)
  seconds = time.perf_counter() - t
  if proc.returncode:
    tail = open(log).read()[-3000:]
    raise SystemExit(f"{model}: training exited {proc.returncode}; {log} ends:\n{tail}")
  return seconds


def _rows(workdir: str, split: str) -> list:
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [r for r in map(json.loads, f) if r.get("split") == split]


def loop_rate(workdir: str, n1: int) -> float:
  """Median steps/s of the loop's perf rows, each run's first and last interval left out when it
  has more (as ``benchmarks.accelerator.measure_loop``: the first holds compiling, the last the
  final evaluation and save)."""
  perf = _rows(workdir, "perf")
  rates = []
  for run in ([r for r in perf if r["step"] <= n1], [r for r in perf if r["step"] > n1]):
    rows = sorted(run, key=lambda r: r["step"])
    rates += [r["steps_per_s"] for r in (rows[1:-1] if len(rows) > 2 else rows)]
  return statistics.median(rates) if rates else float("nan")


def stage(model: str, scale: str, data_dir: str, out: str, root: str) -> dict:
  """Trains, resumes and measures ``model``; writes ``out/<model>.json``."""
  s = SCALES[scale][model]
  workdir = os.path.join(root, model)
  if os.path.exists(workdir):
    import shutil
    shutil.rmtree(workdir)
  remaining = float(os.environ.get("DEVICE_STAGE_SECONDS", "3600"))
  t0 = time.perf_counter()
  sec1 = _train(model, workdir, overrides(model, scale, data_dir, 1),
                os.path.join(out, f"{model}_run1.log"), remaining)
  log2 = os.path.join(out, f"{model}_run2.log")
  sec2 = _train(model, workdir, overrides(model, scale, data_dir, 2), log2,
                remaining - (time.perf_counter() - t0))
  resumed = f"/{s['n1']}" in "".join(l for l in open(log2) if l.startswith("resumed from"))
  if not resumed:
    raise SystemExit(f"{model}: the second run did not resume from step {s['n1']} (see {log2})")
  steps = max(r["step"] for r in _rows(workdir, "train"))
  evals = _rows(workdir, "eval")
  last_eval = {k: v for k, v in (evals[-1] if evals else {}).items()
               if isinstance(v, (int, float)) and k != "step"}
  result = {"model": model, "preset": f"{MODELS[model][1]}:{MODELS[model][2]}",
            "data": overrides(model, scale, data_dir, 2).get("data.name") or "preset's",
            "n1": s["n1"], "n2": s["n2"], "resumed": resumed, "last_train_step": steps,
            "seconds_run1": sec1, "seconds_run2": sec2, "loop_steps_per_s": loop_rate(workdir, s["n1"]),
            "eval_step": evals[-1]["step"] if evals else None, "eval": last_eval,
            "quality": {k: last_eval[k] for k in QUALITY[model] if k in last_eval}}
  if model == "gan":
    from experiments import class_accuracy
    if scale == "cpu":  # the classifier's 3,000 steps take many minutes on a CPU: a flow check only
      from genai_jax.eval import classifier
      name = cfg_data_name(model, scale, data_dir)
      classifier.DATASETS[name] = CPU_CLASSIFIER_STEPS
      print(f"{model}: --scale=cpu trains the digit classifier {CPU_CLASSIFIER_STEPS} steps (into "
            f"$GENAI_JAX_CACHE, which device_train.sh points at a scratch dir at this scale)")
    s = class_accuracy.score(workdir, per_class=100)
    result["quality"].update(class_accuracy=float(s.per_class_accuracy.mean()),
                             classifier_test_accuracy=s.classifier_test_accuracy,
                             fcd=s.fcd, fcd_real_floor=s.fcd_real)
  from benchmarks import accelerator
  cfg = config_of(model, overrides(model, scale, data_dir, 2))
  bare = accelerator.measure(cfg, steps=20 if scale == "gpu" else 3,
                             rounds=3 if scale == "gpu" else 1, with_loop=False)
  result.update(step_steps_per_s=1 / bare["step_s"], items_per_s=bare["rate"], unit=bare["unit"],
                batch=cfg.batch_size)
  result["loop_over_step"] = result["loop_steps_per_s"] * bare["step_s"]
  with open(os.path.join(out, f"{model}.json"), "w") as f:
    json.dump(result, f, indent=2, sort_keys=True, default=float)
  print(json.dumps(result, default=float), flush=True)
  return result


def gpt2(out: str, scale: str) -> dict:
  """GPT-2 small's train step (gpt125m geometry, bytes, bf16) at batches 32 and 64 with cuDNN
  attention, and at 32 with XLA's: tokens/s and MFU (``benchmarks.accelerator``'s FLOPs and peak table)."""
  import jax
  from benchmarks import accelerator
  from experiments.configs import gpt_shakespeare
  rows = []
  batches = (32, 64) if scale == "gpu" else (2,)
  # cuDNN first (the secondary goal's rows); each row lands in gpt2.json, so a cap keeps them.
  impls = ("cudnn", "xla") if jax.devices()[0].platform == "gpu" else ("xla",)
  for impl in impls:
    for batch in batches if impl == impls[0] else batches[:1]:
      c = gpt_shakespeare.get_config("gpt125m")
      c.data.update(vocab_size=256)
      c.model.update(dtype="bfloat16", dropout=0.0, attention_impl=impl)
      c.batch_size = batch
      if scale == "cpu":
        c.model.update(num_layers=2, d_model=64, num_heads=2)
        c.data.seq_len = 64
        c.sample.update(prompt_len=8, length=32)
      r = accelerator.measure(c, steps=10 if scale == "gpu" else 2, rounds=3 if scale == "gpu" else 1,
                              with_loop=False)
      peak, how = accelerator.device_peak(r["dtype"])
      mfu = r["flops"] / r["step_s"] / peak if r["flops"] and peak else None
      rows.append({"attention": impl, "batch": batch, "tokens_per_s": r["rate"], "mfu": mfu,
                   "peak": how, "peak_bytes": r["peak_bytes"]})
      print(json.dumps(rows[-1], default=float), flush=True)
      with open(os.path.join(out, "gpt2.json"), "w") as f:  # each row as it lands
        json.dump(rows, f, indent=2, default=float)
  return {"rows": rows}


def table(out: str) -> str:
  """``out/device_train.md``: one row per finished stage, plus the GPT-2 rows."""
  import platform
  lines = []
  env = os.path.join(out, "env.txt")
  if os.path.exists(env):
    lines += ["```", open(env).read().strip(), "```", ""]
  lines += ["| model (preset, data) | steps (resumed at) | loop steps/s | step steps/s | loop/step | "
            "bare step items/s | final quality | wall s (run 1 + 2) |",
            "|---|---|---|---|---|---|---|---|"]
  for model in MODELS:
    path = os.path.join(out, f"{model}.json")
    if not os.path.exists(path):
      lines.append(f"| {model} | not finished (see {model}_run*.log) | | | | | | |")
      continue
    r = json.load(open(path))
    q = ", ".join(f"{k} {v:.4g}" for k, v in r["quality"].items()) or "n/a"
    lines.append(f"| {model} ({r['preset'].split('/')[-1]}, {r['data']}) | {r['last_train_step']} "
                 f"({r['n1']}) | {r['loop_steps_per_s']:.1f} | {r['step_steps_per_s']:.1f} | "
                 f"{r['loop_over_step']:.2f} | {r['items_per_s']:,.0f} {r['unit']}/s "
                 f"(batch {r['batch']}) | {q} | {r['seconds_run1']:.0f} + {r['seconds_run2']:.0f} |")
  path = os.path.join(out, "gpt2.json")
  if os.path.exists(path):
    lines += ["", "| GPT-2 small step (bf16) | batch | tokens/s | MFU |", "|---|---|---|---|"]
    for r in json.load(open(path)):
      mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] else "n/a"
      lines.append(f"| attention {r['attention']} | {r['batch']} | {r['tokens_per_s']:,.0f} | {mfu} |")
  text = "\n".join(lines) + "\n"
  with open(os.path.join(out, "device_train.md"), "w") as f:
    f.write(text)
  return text


def main() -> int:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--model", choices=[*MODELS, "gpt2"])
  p.add_argument("--table", action="store_true", help="write OUT/device_train.md and print it")
  p.add_argument("--scale", choices=list(SCALES), default="gpu")
  p.add_argument("--data_dir", default=os.path.join(REPO, ".device", "tfds"))
  p.add_argument("--out", default=os.environ.get("OUT") or "/tmp/device_train_out")
  p.add_argument("--root", default="/tmp/device_train_runs", help="workdirs")
  a = p.parse_args()
  os.makedirs(a.out, exist_ok=True)
  if a.table:
    print(table(a.out), end="")
  elif a.model == "gpt2":
    gpt2(a.out, a.scale)
  elif a.model:
    stage(a.model, a.scale, a.data_dir, a.out, a.root)
  else:
    p.error("pass --model or --table")
  return 0


if __name__ == "__main__":
  sys.exit(main())
