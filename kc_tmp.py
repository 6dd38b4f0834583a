import resource, sys, jax, numpy as np
from benchmarks import accelerator as acc
from experiments.configs import seed_gans, vae_mnist
from genai_jax.train import prefetch, sharding
mode = sys.argv[1]; which = sys.argv[2]
if mode == "place":
  orig = prefetch.HostBatches.__next__
  def nxt(self):
    b = orig(self)
    out = {k: jax.device_put(np.asarray(v)) for k, v in b.items()}
    jax.block_until_ready(out)
    return out
  prefetch.HostBatches.__next__ = nxt
orig_loop = acc.measure_loop
def wrapped(*a, **k):
  f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  r = orig_loop(*a, **k)
  print("LOOP faults total", resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
  return r
acc.measure_loop = wrapped
if which == "keras":
  c = seed_gans.get_config("seed_keras_conv_mnist"); steps, rounds = 8, 2
else:
  c = [v for k, v in acc.configs("cpu") if "VAE" in k][0]; steps, rounds = 10, 5
r = acc.measure(acc.on_disk(c), steps=steps, rounds=rounds, min_round_s=0 if which=="keras" else 2)
print("RESULT", mode, which, "step %.4f s, loop %.4f s, l/s %.3f, cpu %.3f" % (r["step_s"], r["loop_step_s"], r["step_s"]/r["loop_step_s"], r["step_cpu_s"]/r["loop_cpu_s"]))
