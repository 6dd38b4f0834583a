"""Language models on the shared loop: causal LM (GPT), masked LM (BERT, MaskGIT sampling) and
the GRU LM baseline. Same data (``data.kind='text'``), same metrics (eval ``loss`` in nats/token
and ``bpc`` in bits/char), same optimiser (AdamW, warmup + cosine, global-norm clipping).

Batches are ``{'tokens': int32 [B, seq_len + 1]}``: causal models predict tokens[:, 1:] from
tokens[:, :-1]; the masked LM reconstructs tokens[:, :-1] from a BERT-corrupted copy.
"""

import dataclasses
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from genai_jax import data as data_lib
from genai_jax import generate as gen
from genai_jax import samples
from genai_jax.data import text
from genai_jax.errors import ConfigError
from genai_jax.models import gru, registry, transformer
from genai_jax.objectives import lm as lm_losses
from genai_jax.tasks.base import Task
from genai_jax.train import optimizers, sharding

KINDS = ("causal_lm", "masked_lm", "gru_lm")


@flax.struct.dataclass
class LMState:
  """Params may be boxed (``nn.LogicallyPartitioned``): the boxes carry the logical axis names
  from which ``train.sharding`` derives the FSDP layout; optax and flax see through them."""
  step: jax.Array  # int32 scalar
  rng: jax.Array  # uint32[2]; per-step keys are fold_in(rng, step)
  params: Any
  opt_state: Any


@dataclasses.dataclass(frozen=True)
class LM:
  """The pieces of one language model, shared by the task and the sampling CLI."""
  kind: str
  model: nn.Module
  vocab: text.Vocab
  seq_len: int
  mask_id: int  # masked LM only ([MASK] = vocab.size); -1 otherwise

  def logits(self, params, tokens, **kw) -> jax.Array:
    if self.kind == "gru_lm":
      return self.model.apply({"params": params}, tokens, **kw)[0]
    return self.model.apply({"params": params}, tokens, **kw)

  def continue_fn(self, params, prompt, num_new: int, rng, **sampling) -> jax.Array:
    """prompt int32 [B, P] -> int32 [B, P + num_new] (causal and GRU: incremental decoding;
    masked LM: the new positions start as [MASK] and are filled by MaskGIT rounds)."""
    b, p = prompt.shape
    if self.kind == "masked_lm":
      iters = sampling.pop("iterations", 12)
      sampling.pop("top_p", None)
      tokens = jnp.concatenate([prompt, jnp.full((b, num_new), self.mask_id, jnp.int32)], 1)
      return gen.maskgit(lambda t: self.logits(params, t), tokens, self.mask_id, iters, rng,
                         **sampling)
    sampling.pop("iterations", None)
    if self.kind == "gru_lm":
      def step_fn(carries, tokens):
        logits, carries = self.model.apply({"params": params}, tokens, carries)
        return logits, carries
      carry = self.model.zero_carries(b)
    else:
      def step_fn(cache, tokens):
        logits, upd = self.model.apply({"params": params, "cache": cache}, tokens, decode=True,
                                       mutable=["cache"])
        return logits, upd["cache"]
      carry = transformer.init_cache(self.model, b, p + num_new)
    return gen.generate(step_fn, carry, prompt, num_new, rng, **sampling)

SHARED_KEYS = ("num_layers", "dropout", "dtype")  # read by every LM

_TRANSFORMER_KEYS = {"num_heads": 6, "d_model": 384, "mlp_ratio": 4, "positions": "learned",
                     "tie_embeddings": True, "use_bias": False, "attention_impl": "",
                     "remat": "none", "scan_layers": False}


def _transformer(s):
  if s["d_model"] % s["num_heads"]:
    raise ConfigError(f"model.d_model={s['d_model']} is not divisible by model.num_heads="
                      f"{s['num_heads']}; change one of them")
  if s["remat"] not in transformer.REMAT_POLICIES:
    raise ConfigError(f"model.remat={s['remat']!r}; set it to one of "
                      f"{sorted(transformer.REMAT_POLICIES)}")
  if s["attention_impl"] not in ("", "xla", "cudnn"):
    raise ConfigError(f"model.attention_impl={s['attention_impl']!r}; set it to '' (fastest that "
                      f"applies), 'xla' or 'cudnn'")
  mlm = s["kind"] == "masked_lm"
  return transformer.Transformer(transformer.TransformerConfig(
      vocab_size=s["vocab_size"] + mlm, num_layers=s["num_layers"], num_heads=s["num_heads"],
      d_model=s["d_model"], mlp_ratio=s["mlp_ratio"], max_len=s["seq_len"], dropout=s["dropout"],
      positions=s["positions"], tie_embeddings=s["tie_embeddings"], causal=not mlm,
      use_bias=s["use_bias"], dtype=s["dtype"] or jnp.float32,
      attention_impl=s["attention_impl"] or None, remat=s["remat"], scan_layers=s["scan_layers"]))


def _rnn_cell(cell: str) -> str:
  if cell not in gru.CELLS:
    raise ConfigError(f"unknown model.rnn_cell {cell!r}; set model.rnn_cell to one of "
                      f"{list(gru.CELLS)}", keys=("model.rnn_cell",))
  return cell


# The LM registry is keyed by ``config.task`` (the kind of model), with the model keys each reads.
MODELS = {
    "causal_lm": registry.Entry(_transformer, _TRANSFORMER_KEYS),
    "masked_lm": registry.Entry(_transformer, _TRANSFORMER_KEYS),
    "gru_lm": registry.Entry(
        lambda s: gru.GRULM(s["vocab_size"], s["gru_hidden"], s["num_layers"], s["dropout"],
                            s["dtype"], _rnn_cell(s["rnn_cell"])),
        {"gru_hidden": 512, "rnn_cell": "gru"}),
}


def model_settings(config) -> tuple[registry.Entry, dict]:
  """(entry, settings) of the model of ``config.task`` in ``MODELS`` (see ``registry.settings``)."""
  return registry.settings("LM", MODELS, config.model, SHARED_KEYS, name=config.task,
                           name_key="task")


def build(config) -> LM:
  """The model, vocabulary and geometry of ``config`` (``config.task`` one of KINDS); a model key
  the chosen kind does not read (e.g. gru_hidden for a transformer) is a ConfigError."""
  if config.task not in KINDS:
    raise ConfigError(f"task={config.task!r} is not a language model; set task to one of {list(KINDS)}",
                      keys=("task",))
  entry, settings = model_settings(config)
  vocab = data_lib.vocabulary(config.data)  # text, or piano-roll tokens (data.kind='music')
  seq_len = config.data.seq_len
  eval_len = int(config.data.get("eval_seq_len", 0) or 0)
  if eval_len > seq_len and config.task != "gru_lm":  # an RNN reads any length; these, seq_len
    raise ConfigError(f"data.eval_seq_len={eval_len} is longer than data.seq_len={seq_len}, "
                      f"the most a {config.task} model reads; set data.eval_seq_len to at most "
                      f"{seq_len} (0: seq_len)", keys=("data.eval_seq_len",))
  model = entry.build({**settings, "kind": config.task, "vocab_size": vocab.size,
                       "seq_len": seq_len})
  return LM(config.task, model, vocab, seq_len, vocab.size if config.task == "masked_lm" else -1)


def make_optimizer(opt, num_steps: int) -> optax.GradientTransformation:
  """AdamW (weight decay on matrices and embeddings) after global-norm clipping, with linear
  warmup and cosine decay to ``min_learning_rate``, as nanoGPT (``train.optimizers.build``)."""
  return optimizers.build(opt, num_steps, "warmup_cosine", names=("adamw",), family="LM")


def make_task(config) -> Task:
  lm = build(config)
  tx = make_optimizer(config.optimizer, config.num_steps)
  mlm = lm.kind == "masked_lm"
  mask_rate = config.objective.mask_rate
  eval_key = jax.random.PRNGKey(config.seed + 2)  # the same eval masks at every eval
  sample_key = jax.random.PRNGKey(config.seed + 1)  # the same sampling noise at every eval

  def init(rng):
    p_key, state_key = jax.random.split(rng)
    params = lm.model.init(p_key, jnp.zeros((2, lm.seq_len), jnp.int32))["params"]
    return LMState(step=jnp.zeros((), jnp.int32), rng=state_key, params=params,
                   opt_state=tx.init(params))

  def inputs_targets(tokens, key):
    if mlm:
      x = tokens[:, :-1]
      inputs, weights = lm_losses.bert_mask(key, x, lm.vocab.size, lm.mask_id, mask_rate)
      return inputs, x, weights
    return tokens[:, :-1], tokens[:, 1:], None

  def train_step(state: LMState, batch):
    key = jax.random.fold_in(state.rng, state.step)
    drop_key, mask_key = jax.random.split(key)
    inputs, targets, weights = inputs_targets(batch["tokens"], mask_key)

    def loss_fn(params):
      logits = lm.logits(sharding.gathered(params), inputs, train=True, rngs={"dropout": drop_key})
      return lm_losses.cross_entropy(logits, targets, weights)
    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = {"loss": loss, "grad_norm": optax.global_norm(grads)}
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics

  def eval_step(state: LMState, batch):
    """Validation ``loss`` (nats/token), ``bpc`` (bits/char; bits/byte for byte vocabularies)
    and next-token (masked LM: masked-token) ``accuracy``."""
    inputs, targets, weights = inputs_targets(batch["tokens"], eval_key)
    logits = lm.logits(state.params, inputs)
    loss = lm_losses.cross_entropy(logits, targets, weights)
    hits = (jnp.argmax(logits, -1) == targets).astype(jnp.float32)
    acc = hits.mean() if weights is None else (hits * weights).sum() / jnp.maximum(weights.sum(), 1)
    return {"loss": loss, "bpc": loss / lm_losses.LN2, "accuracy": acc}

  n, prompt_len = config.num_samples, config.sample.prompt_len
  num_new = lm.seq_len - prompt_len if mlm else config.sample.length
  if not mlm and lm.kind != "gru_lm" and prompt_len + num_new > lm.seq_len:
    raise ConfigError(f"sample.prompt_len + sample.length = {prompt_len + num_new} exceeds "
                      f"data.seq_len={lm.seq_len}; lower sample.length", keys=("sample.length",))
  # The vocabulary says what kind its token rows are: text (Tokens) or, e.g., PianoRoll.
  def as_sample(tokens, prompt_len):
    if hasattr(lm.vocab, "as_sample"):
      return lm.vocab.as_sample(tokens, prompt_len)
    return samples.Tokens(tokens, lm.vocab.decode, prompt_len)
  as_sample(jnp.zeros((1, lm.seq_len), jnp.int32), prompt_len)  # a bad prompt_len fails now
  sampling = dict(temperature=config.sample.temperature, top_k=config.sample.top_k)
  if mlm:
    sampling["iterations"] = config.sample.iterations
    if config.sample.get("choice_temperature"):  # MaskGIT's randomised unmasking order
      sampling["choice_temperature"] = config.sample.choice_temperature
  else:
    sampling["top_p"] = config.sample.top_p

  def sample(state: LMState, batch):
    """{'samples': Tokens int32 [num_samples, prompt_len + new]} (or the vocabulary's kind,
    e.g. PianoRoll): continuations of validation prompts (the prompt marked off)."""
    prompt = batch["tokens"][:n, :prompt_len]
    tokens = lm.continue_fn(state.params, prompt, num_new, sample_key, **sampling)
    return {"samples": as_sample(tokens, prompt_len)}

  # Unconditional text starts where the corpus starts a new example: after the separator. A
  # vocabulary without a start token (start_id None: piano rolls) starts a masked LM from nothing.
  if hasattr(lm.vocab, "start_id"):
    start_id = lm.vocab.start_id
    if start_id is None and not mlm:
      raise ConfigError(f"{lm.kind} needs a start token, which data.kind="
                        f"{config.data.kind!r} has none of; set task=masked_lm", keys=("task",))
  else:
    try:
      start_id = int(lm.vocab.encode(text.SEPARATOR)[0])
    except ConfigError:  # a char vocabulary of a one-example corpus may lack it
      start_id = 0
  start_len = 0 if start_id is None else 1
  gen_new = lm.seq_len - start_len if mlm else num_new

  def generate(state: LMState, rng, n: int):
    """Tokens int32 [n, 1 + new] (or the vocabulary's kind): the start token (if any), then
    ``sample.length`` new tokens (masked LM: the rest of the window) drawn with the config's
    sampling settings."""
    prompt = jnp.full((n, start_len), start_id or 0, jnp.int32)
    tokens = lm.continue_fn(state.params, prompt, gen_new, rng, **sampling)
    return as_sample(tokens, start_len)

  def baselines():
    """{'unigram_loss': nats/token of the eval split under the train split's token frequencies}:
    the loss of a model that ignores context. Window-packed (char) corpora only: a stream corpus
    such as lm1b is too large to read whole for one figure."""
    if config.data.get("kind", "text") == "music":  # every step of every piece, as tokens
      from genai_jax import music
      from genai_jax.data import music as music_data
      tokens = lambda split: np.concatenate([music.to_tokens(r) for r in
                                             music_data.split_rolls(config.data, split)])
      return {"unigram_loss": text.unigram_entropy(tokens(config.data.eval_split),
                                                   tokens(config.data.train_split))}
    if config.data.get("packing", "windows") != "windows":
      return {}
    return {"unigram_loss": text.unigram_entropy(text.split_tokens(config.data, config.data.eval_split),
                                                 text.split_tokens(config.data, config.data.train_split))}

  return Task(init=init, train_step=train_step, eval_step=eval_step, sample=sample,
              finite_metrics=("loss",), unit="tokens", items_per_example=lm.seq_len,
              baselines=baselines, generate=generate)
