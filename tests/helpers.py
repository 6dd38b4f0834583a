"""Test helpers importable without side effects (conftest configures devices; workers must not)."""


def tiny_gan_config(**overrides):
  """The demo preset shrunk so a train step compiles and runs in about a second."""
  from experiments.configs import dcgan_celeba
  c = dcgan_celeba.get_config("demo")
  c.model.update(width=8, image_size=16)
  c.data.update(image_size=16)
  c.update(batch_size=16, num_steps=6, log_every=1, eval_every=3, checkpoint_every=3,
           num_samples=16, eval_batches=1)
  for k, v in overrides.items():
    node = c
    *path, last = k.split(".")
    for p in path:
      node = node[p]
    node[last] = v
  return c
