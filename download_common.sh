# Helpers shared by download_datasets.sh and download_weights.sh (sourced, not run).

log() { printf '%s\n' "$*"; }
err() { printf 'error: %s\n' "$*" >&2; }

table_field() {  # table_field ARRAY NAME INDEX -> one column of the 'NAME|...' entry of ARRAY
  local -n _table="$1"
  local entry cols
  for entry in "${_table[@]}"; do
    if [[ "${entry%%|*}" == "$2" ]]; then
      IFS='|' read -r -a cols <<<"${entry}"
      printf '%s' "${cols[$3]}"
      return 0
    fi
  done
  return 1
}

fetch_part() {  # fetch_part URL FILE: resumable download into FILE.part (curl, else wget)
  local url="$1" out="$2"
  mkdir -p "$(dirname "${out}")"
  log "  downloading ${url}"
  if command -v curl >/dev/null 2>&1; then
    curl -fL --retry 3 --retry-delay 5 -C - -o "${out}.part" "${url}"
  elif command -v wget >/dev/null 2>&1; then
    wget -c -O "${out}.part" "${url}"
  else
    err "neither curl nor wget is installed"
    return 1
  fi
}

RUN_FAILED=0

run_each() {  # run_each FUNC NAMES: FUNC NAME for each line of NAMES; RUN_FAILED=1 if any failed
  # Each runs in a subshell with errexit active, so one failure does not stop the others
  # (call it as a plain command: inside `if`/`||` bash would ignore errexit in the subshell).
  local func="$1" names="$2" name rc failed=()
  while read -r name; do
    set +e
    ( set -e; "${func}" "${name}" ) </dev/null
    rc=$?
    set -e
    if (( rc != 0 )); then
      err "[${name}] failed (exit ${rc}); fix the problem and run the script again"
      failed+=("${name}")
    fi
  done <<<"${names}"
  if (( ${#failed[@]} )); then
    err "failed: ${failed[*]}"
    RUN_FAILED=1
  fi
}
