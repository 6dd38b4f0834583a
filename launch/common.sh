# Helpers shared by the launch scripts (sourced, not run): input checks that fail with one line
# naming the fix, and "print every command, run it unless --dry-run".

REPO="${REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
DRY_RUN="${DRY_RUN:-0}"

die() {  # one line on stderr, exit 2 (usage/config error)
  echo "error: $*" >&2
  exit 2
}

note() {  # commentary: a shell comment, so a --dry-run transcript stays copy-pasteable
  echo "# $*"
}

quote() {  # one word, single-quoted only when the shell needs it (readable and paste-safe)
  if [[ "$1" =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then
    printf '%s' "$1"
  elif [[ "$1" =~ ^(--[A-Za-z0-9._-]+=)(.*)$ ]]; then  # --opt='value', as a person would type it
    printf "%s'%s'" "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]//\'/\'\\\'\'}"
  else
    printf "'%s'" "${1//\'/\'\\\'\'}"
  fi
}

show() {  # the command, quoted exactly as it would run
  local out="" word
  for word in "$@"; do out+="$(quote "$word") "; done
  echo "${out% }"
}

run() {  # print the command; run it unless this is a dry run
  show "$@"
  if [[ "$DRY_RUN" != 1 ]]; then "$@"; fi
}

require() {  # require NAME VALUE FLAG: a value that has no default
  [[ -n "$2" ]] || die "$1 is not set; pass $3 (or set the environment variable named in --help)"
}

check_module() {  # an experiment module that exists in this checkout, e.g. experiments.dcgan_celeba
  [[ "$1" =~ ^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$ ]] ||
    die "'$1' is not a Python module name; pass one like experiments.dcgan_celeba"
  [[ -f "$REPO/${1//.//}.py" ]] ||
    die "no module $1 in this checkout ($REPO/${1//.//}.py); pass one of: $(cd "$REPO" && ls experiments/*.py | grep -v -e __init__ -e /main.py | sed 's|/|.|; s|\.py$||' | tr '\n' ' ')"
}

is_gs() { [[ "$1" == gs://?* ]]; }
