#!/usr/bin/env bash
# Cloud TPU VMs for genai_jax: create a slice, install this checkout on every worker, run an
# experiment on all workers at once (JAX's multi-controller runtime: every host runs the same
# program), read the logs, stop (SIGTERM: checkpoint, then exit) and delete.
#
#   launch/tpu.sh create  --name=NAME --zone=ZONE --accelerator-type=v4-32 [--version=V] [--spot]
#   launch/tpu.sh install --name=NAME --zone=ZONE
#   launch/tpu.sh run     --name=NAME --zone=ZONE --accelerator-type=v4-32 experiments.dcgan_celeba \
#                         --workdir=gs://BUCKET/runs/dcgan --data-dir=gs://BUCKET/tfds [-- --config.KEY=V ...]
#   launch/tpu.sh logs    --name=NAME --zone=ZONE [--worker=all|N] [--lines=40] [--follow]
#   launch/tpu.sh stop    --name=NAME --zone=ZONE experiments.dcgan_celeba   (or --run-name=NAME)
#   launch/tpu.sh delete  --name=NAME --zone=ZONE
#
# Every subcommand takes --dry-run (print the commands, run nothing) and --project=P. Defaults
# come from GENAI_TPU_NAME, GENAI_TPU_ZONE, GENAI_TPU_PROJECT, GENAI_TPU_TYPE,
# GENAI_TPU_VERSION and GENAI_TPU_SPOT=1. Rerunning `run` with the same --workdir resumes from
# its latest checkpoint, which is how a preempted spot slice continues once recreated.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

GCLOUD="${GCLOUD:-gcloud}"
REMOTE_DIR='~/genai_jax'  # on each worker; ~ expands there

usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"; }  # the header

# Default runtime (software) version per TPU generation (cloud.google.com/tpu/docs/runtimes).
default_version() {
  case "$1" in
    v2-*|v3-*|v4-*) echo tpu-ubuntu2204-base ;;
    v5litepod-*) echo v2-alpha-tpuv5-lite ;;
    v5p-*) echo v2-alpha-tpuv5 ;;
    v6e-*) echo v2-alpha-tpuv6e ;;
  esac
}

# Hosts in a slice: v2-v4 and v5p count TensorCores (8 per host); v5e and v6e count chips (a
# single host up to 8, then 4 per host).
num_hosts() {
  local family="${1%-*}" n="${1##*-}"
  case "$family" in
    v5litepod|v6e) if (( n <= 8 )); then echo 1; else echo $(( n / 4 )); fi ;;
    *) echo $(( (n + 7) / 8 )) ;;
  esac
}

check_type() {
  [[ "$1" =~ ^(v2|v3|v4|v5p|v5litepod|v6e)-[1-9][0-9]*$ ]] ||
    die "accelerator type '$1' is not one of vN-CORES/CHIPS, e.g. v4-8, v4-32, v5litepod-16, v5p-8, v6e-8; pass --accelerator-type=TYPE (v5e is spelt v5litepod)"
}

# --- arguments --------------------------------------------------------------------------------
[[ $# -ge 1 ]] || { usage >&2; die "missing subcommand; use one of: create install run logs stop delete"; }
CMD="$1"; shift
case "$CMD" in
  create|install|run|logs|stop|delete) ;;
  -h|--help|help) usage; exit 0 ;;
  *) die "unknown subcommand '$CMD'; use one of: create install run logs stop delete" ;;
esac

NAME="${GENAI_TPU_NAME:-}"
ZONE="${GENAI_TPU_ZONE:-}"
PROJECT="${GENAI_TPU_PROJECT:-}"
TYPE="${GENAI_TPU_TYPE:-}"
VERSION="${GENAI_TPU_VERSION:-}"
SPOT="${GENAI_TPU_SPOT:-0}"
PYTHON_BIN=python3.11  # requires-python is >=3.11; TPU VM images ship 3.10
MODULE="" WORKDIR="" DATA_DIR="" RUN_NAME="" WORKER=all LINES=40 FOLLOW=0
EXTRA=()
while [[ $# -gt 0 ]]; do
  arg="$1"; shift
  case "$arg" in
    --name=*) NAME="${arg#*=}" ;;
    --zone=*) ZONE="${arg#*=}" ;;
    --project=*) PROJECT="${arg#*=}" ;;
    --accelerator-type=*|--type=*) TYPE="${arg#*=}" ;;
    --version=*) VERSION="${arg#*=}" ;;
    --spot) SPOT=1 ;;
    --python=*) PYTHON_BIN="${arg#*=}" ;;
    --workdir=*) WORKDIR="${arg#*=}" ;;
    --data-dir=*) DATA_DIR="${arg#*=}" ;;
    --run-name=*) RUN_NAME="${arg#*=}" ;;
    --worker=*) WORKER="${arg#*=}" ;;
    --lines=*) LINES="${arg#*=}" ;;
    --follow) FOLLOW=1 ;;
    --dry-run) DRY_RUN=1 ;;
    -h|--help) usage; exit 0 ;;
    --) EXTRA=("$@"); break ;;
    --*) die "unknown option '$arg' for '$CMD' (options take --opt=value); see launch/tpu.sh --help" ;;
    *) [[ ( "$CMD" == run || "$CMD" == stop ) && -z "$MODULE" ]] ||
         die "unexpected argument '$arg'; pass experiment flags after --, e.g. -- --config.batch_size=256"
       MODULE="$arg" ;;
  esac
done

require "the TPU name" "$NAME" "--name=NAME"
[[ "$NAME" =~ ^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$ ]] ||
  die "TPU name '$NAME' must be lowercase letters, digits and hyphens, starting with a letter; pass --name=NAME"
require "the zone" "$ZONE" "--zone=ZONE"
[[ "$ZONE" =~ ^[a-z]+-[a-z]+[0-9]+-[a-z]$ ]] ||
  die "zone '$ZONE' does not look like a zone (e.g. us-central2-b, europe-west4-a); pass --zone=ZONE"
if [[ -n "$PROJECT" && ! "$PROJECT" =~ ^[a-z][-a-z0-9]{4,28}[a-z0-9]$ ]]; then
  die "project '$PROJECT' is not a project ID (6-30 lowercase letters, digits, hyphens); pass --project=ID"
fi
[[ "$WORKER" == all || "$WORKER" =~ ^[0-9]+$ ]] || die "--worker must be 'all' or a worker number, not '$WORKER'"
[[ "$LINES" =~ ^[0-9]+$ ]] || die "--lines must be a number, not '$LINES'"

LOC=(--zone="$ZONE")
[[ -n "$PROJECT" ]] && LOC+=(--project="$PROJECT")
TPU=("$GCLOUD" compute tpus tpu-vm)
ssh_all() { run "${TPU[@]}" ssh "$NAME" "${LOC[@]}" --worker="${2:-all}" --command="$1"; }

# --- subcommands ------------------------------------------------------------------------------
case "$CMD" in
create)
  require "the accelerator type" "$TYPE" "--accelerator-type=TYPE (e.g. v4-8)"
  check_type "$TYPE"
  VERSION="${VERSION:-$(default_version "$TYPE")}"
  [[ "$VERSION" =~ ^[a-z0-9][-a-z0-9.]*$ ]] || die "runtime version '$VERSION' looks wrong; pass --version=V (e.g. tpu-ubuntu2204-base)"
  note "create $NAME: $TYPE ($(num_hosts "$TYPE") host(s)), runtime $VERSION, $([[ $SPOT == 1 ]] && echo spot || echo on-demand) in $ZONE"
  args=(create "$NAME" "${LOC[@]}" --accelerator-type="$TYPE" --version="$VERSION")
  [[ "$SPOT" == 1 ]] && args+=(--spot)
  run "${TPU[@]}" "${args[@]}"
  ;;

install)
  # Ship exactly the committed tree (git archive), so every worker runs the same code.
  [[ -d "$REPO/.git" ]] || die "$REPO is not a git checkout; install needs git archive of HEAD"
  rev="$(git -C "$REPO" rev-parse --short HEAD)"
  if [[ -n "$(git -C "$REPO" status --porcelain --untracked-files=no)" ]]; then
    note "warning: uncommitted changes are NOT shipped; install sends commit $rev only"
  fi
  tarball="${TMPDIR:-/tmp}/genai_jax-$rev.tar.gz"
  note "install commit $rev on every worker of $NAME: $REMOTE_DIR, venv with $PYTHON_BIN, pip install -e '.[tpu,gcs]'"
  run git -C "$REPO" archive --format=tar.gz -o "$tarball" HEAD
  run "${TPU[@]}" scp "$tarball" "$NAME:genai_jax.tar.gz" "${LOC[@]}" --worker=all
  # On each worker: unpack over the old tree (keeping .venv, logs and local workdirs), get
  # Python 3.11 if the image lacks it, then install the project with the pinned JAX TPU wheels.
  ssh_all "set -e; command -v $PYTHON_BIN >/dev/null || { sudo apt-get update -qq && sudo apt-get install -y -qq $PYTHON_BIN $PYTHON_BIN-venv; }; mkdir -p $REMOTE_DIR && cd $REMOTE_DIR && find . -mindepth 1 -maxdepth 1 ! -name .venv ! -name logs ! -name workdirs -exec rm -rf {} + && tar -xzf ~/genai_jax.tar.gz && { test -x .venv/bin/python || $PYTHON_BIN -m venv .venv; } && .venv/bin/pip install -q --upgrade pip && .venv/bin/pip install -q -e \".[tpu,gcs]\" && echo \"installed on \$(hostname): jax \$(.venv/bin/python -c 'import jax, genai_jax; print(jax.__version__)')\""
  ;;

run)
  [[ -n "$MODULE" ]] || die "which experiment? pass a module, e.g. launch/tpu.sh run ... experiments.dcgan_celeba --workdir=gs://BUCKET/runs/x"
  check_module "$MODULE"
  require "the workdir" "$WORKDIR" "--workdir=gs://BUCKET/runs/NAME"
  require "the accelerator type" "$TYPE" "--accelerator-type=TYPE (the slice's; it tells single- from multi-host)"
  check_type "$TYPE"
  hosts="$(num_hosts "$TYPE")"
  if (( hosts > 1 )); then
    # Every host writes its share of each checkpoint and reads its own data shards: they
    # need storage they all see.
    is_gs "$WORKDIR" || die "--workdir=$WORKDIR is local, but $TYPE has $hosts hosts that must share it; pass --workdir=gs://BUCKET/..."
    [[ -z "$DATA_DIR" ]] || is_gs "$DATA_DIR" || die "--data-dir=$DATA_DIR is local, but $TYPE has $hosts hosts; pass --data-dir=gs://BUCKET/tfds"
  elif ! is_gs "$WORKDIR"; then
    note "warning: local --workdir on a TPU VM is lost with the VM (a preempted spot VM is deleted); prefer gs://"
  fi
  for a in "${EXTRA[@]}"; do
    [[ "$a" == --workdir=* ]] && die "pass the workdir as --workdir=... before --, not among the experiment flags"
    [[ "$a" == --* ]] || die "experiment flag '$a' after -- must look like --config.KEY=VALUE"
  done
  if (( hosts > 8 )) && [[ " ${EXTRA[*]-} " != *" --config.data.shards="* ]]; then
    note "warning: $hosts processes: data.shards (default 8) must be a multiple of $hosts; add -- --config.data.shards=$hosts"
  fi
  RUN_NAME="${RUN_NAME:-${MODULE##*.}}"
  [[ "$RUN_NAME" =~ ^[A-Za-z0-9_.-]+$ ]] || die "--run-name must be letters, digits, _ . -"
  [[ -z "$DATA_DIR" ]] && note "no --data-dir: datasets come from TFDS_DATA_DIR on the workers or ~/tensorflow_datasets (embedded demo datasets need none)"
  note "run $MODULE on all $hosts host(s) of $NAME; workdir $WORKDIR; log $REMOTE_DIR/logs/$RUN_NAME.<host>.log on each worker"
  env_part=""
  [[ -n "$DATA_DIR" ]] && env_part="TFDS_DATA_DIR=$(quote "$DATA_DIR") "
  py="$(show .venv/bin/python -m "$MODULE" --workdir="$WORKDIR" ${EXTRA[@]+"${EXTRA[@]}"})"
  # Detached (setsid nohup) so it outlives the ssh session; the pid file lets `stop` send
  # SIGTERM to exactly this process, which then checkpoints and exits.
  ssh_all "cd $REMOTE_DIR || { echo \"not installed: run launch/tpu.sh install first\" >&2; exit 1; }; mkdir -p logs; if [ -f logs/$RUN_NAME.pid ] && kill -0 \"\$(cat logs/$RUN_NAME.pid)\" 2>/dev/null; then echo \"$RUN_NAME is already running on \$(hostname); launch/tpu.sh stop first\" >&2; exit 1; fi; ${env_part}setsid nohup $py > logs/$RUN_NAME.\$(hostname).log 2>&1 < /dev/null & echo \$! > logs/$RUN_NAME.pid; echo \"started $RUN_NAME on \$(hostname) (pid \$!)\""
  ;;

logs)
  if [[ "$FOLLOW" == 1 ]]; then
    [[ "$WORKER" != all ]] || WORKER=0  # following every worker at once interleaves lines
    ssh_all "tail -n $LINES -F $REMOTE_DIR/logs/*.log" "$WORKER"
  else
    ssh_all "for f in $REMOTE_DIR/logs/*.log; do echo \"== \$(hostname): \$f\"; tail -n $LINES \"\$f\"; done" "$WORKER"
  fi
  ;;

stop)
  # SIGTERM, as a preemption notice: the loop saves a checkpoint and exits; rerun `run` to resume.
  [[ -n "$RUN_NAME" || -n "$MODULE" ]] || die "which run? pass its module (e.g. experiments.dcgan_celeba) or --run-name=NAME"
  RUN_NAME="${RUN_NAME:-${MODULE##*.}}"
  [[ "$RUN_NAME" =~ ^[A-Za-z0-9_.-]+$ ]] || die "--run-name must be letters, digits, _ . -"
  note "stop $RUN_NAME on all workers of $NAME (SIGTERM: checkpoint, then exit)"
  ssh_all "cd $REMOTE_DIR && kill -TERM \"\$(cat logs/$RUN_NAME.pid)\" && echo \"sent SIGTERM to $RUN_NAME on \$(hostname)\""
  ;;

delete)
  note "delete $NAME in $ZONE (checkpoints on gs:// stay)"
  run "${TPU[@]}" delete "$NAME" "${LOC[@]}" --quiet
  ;;
esac
