#!/usr/bin/env bash
# Get the weight files the README's ViT examples and training recipes need.
#
#   ./download_weights.sh --list               # every file: where it goes, how it is obtained
#   ./download_weights.sh --only mae --dry-run # show URLs and targets, touch nothing
#   ./download_weights.sh                      # fetch what has a URL, explain the rest
#   ./download_weights.sh --check              # verify the files that are present
#
# The MAE ImageNet weights have official direct URLs and are downloaded (resumable). The MST
# and SimpleClick checkpoints are published only on OneDrive/SharePoint and Google Drive pages
# that need a browser: for them the script prints the manual steps. The publishers give no
# checksums, so none can be pinned here; instead every file (downloaded or placed by hand) is
# read with the project's checkpoint reader (no code from the file runs) and its architecture is
# checked against its name (python -m isegm.model.weights verify). The SHA-256 of a verified
# file is written next to it (<file>.sha256) and checked on later runs.
set -euo pipefail
shopt -s inherit_errexit

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="${SCRIPT_DIR}"
PYTHON="${PYTHON:-python}"
ONLY="all"
DRY_RUN=0
CHECK_ONLY=0

MAE_URL="https://dl.fbaipublicfiles.com/mae/pretrain"
MST_ZOO="https://cuhko365-my.sharepoint.com/:f:/g/personal/xulong_cuhk_edu_cn/EjwcfWorCwZGsOayrEP9ymkBhHnlnACdFYpVDgEoCVqupA?e=wh45gO"
SIMPLECLICK_DRIVE="https://drive.google.com/drive/folders/1qpK0gtAPkVMF7VC42UA9XF4xMWr5KJmL?usp=sharing"

# name|how|verify kind|target (relative to the root)|used as|description
FILES=(
  "MAE_BASE|url|mae-base|weights/pretrained/mae_pretrain_vit_base.pth|config.yml IMAGENET_PRETRAINED_MODELS.MAE_BASE|MAE ViT-B/16 ImageNet (init of the 224 ablations, SimpleClick, MST-1024)"
  "MAE_LARGE|url|mae-large|weights/pretrained/mae_pretrain_vit_large.pth|config.yml IMAGENET_PRETRAINED_MODELS.MAE_LARGE|MAE ViT-L/16 ImageNet"
  "MAE_HUGE|url|mae-huge|weights/pretrained/mae_pretrain_vit_huge.pth|config.yml IMAGENET_PRETRAINED_MODELS.MAE_HUGE|MAE ViT-H/14 ImageNet"
  "MST|manual|mst-main|weights/mst-3s-slim-448-base.pth|--checkpoint weights/mst-3s-slim-448-base.pth|MST main ViT-B 448, the README's evaluation and demo examples"
  "SIMPLECLICK_BASE|manual|simpleclick-base|weights/pretrained/cocolvis_vit_base.pth|config.yml IMAGENET_PRETRAINED_MODELS.VIT_BASE|SimpleClick ViT-B C+L (init of the MST 448 recipes)"
  "SIMPLECLICK_LARGE|manual|simpleclick-large|weights/pretrained/cocolvis_vit_large.pth|config.yml IMAGENET_PRETRAINED_MODELS.VIT_LARGE|SimpleClick ViT-L C+L (init of MST ViT-L)"
  "SIMPLECLICK_HUGE|manual|simpleclick-huge|weights/pretrained/cocolvis_vit_huge.pth|config.yml IMAGENET_PRETRAINED_MODELS.VIT_HUGE|SimpleClick ViT-H C+L"
)
GROUP_MAE="MAE_BASE,MAE_LARGE,MAE_HUGE"
GROUP_MANUAL="MST,SIMPLECLICK_BASE,SIMPLECLICK_LARGE,SIMPLECLICK_HUGE"

usage() {
  cat <<EOF
Usage: $(basename "$0") [--only NAME[,NAME...]] [--dry-run | --check] [--mirror URL] [--root DIR]
       $(basename "$0") --list | --help

Fetch the MAE weights by URL and print the manual steps for the MST and SimpleClick
checkpoints; every file present is verified (checkpoint reader + architecture + SHA-256).

Options:
  --only NAMES   comma-separated names (case-insensitive) or groups:
                 mae    = ${GROUP_MAE}
                 manual = ${GROUP_MANUAL}
                 all    = everything (default)
  --list         list the files, where they go and how they are obtained, then exit
  --dry-run      print what would be downloaded and where; change nothing
  --check        only verify the files that are present (no download, no instructions)
  --mirror URL   base URL for the MAE files instead of ${MAE_URL}
                 (e.g. file:///mnt/mirror for a machine without internet)
  --root DIR     folder that holds weights/ (default: ${SCRIPT_DIR})
  -h, --help     show this help
EOF
}

# shellcheck source=download_common.sh
source "${SCRIPT_DIR}/download_common.sh"

field() {  # field NAME INDEX -> one column of the FILES entry
  table_field FILES "$1" "$2"
}

list_files() {
  local entry cols
  printf '%-18s %-7s %-46s %s\n' "NAME" "HOW" "TARGET (under ${ROOT})" "USED AS"
  for entry in "${FILES[@]}"; do
    IFS='|' read -r -a cols <<<"${entry}"
    printf '%-18s %-7s %-46s %s\n' "${cols[0]}" "${cols[1]}" "${cols[3]}" "${cols[4]}"
    printf '%-18s %-7s %s\n' "" "" "${cols[5]}"
  done
  log ""
  log "url:    ${MAE_URL}/<file name> (downloaded by this script)"
  log "manual: MST ${MST_ZOO}"
  log "        SimpleClick ${SIMPLECLICK_DRIVE}"
}

resolve_selection() {  # expands --only into names, one per line, in FILES order
  local wanted="" item entry cols found
  IFS=',' read -r -a items <<<"$1"
  for item in "${items[@]}"; do
    item="$(printf '%s' "${item}" | tr '[:lower:]' '[:upper:]' | tr -d '[:space:]')"
    [[ -z "${item}" ]] && continue
    case "${item}" in
      ALL) wanted+=",${GROUP_MAE},${GROUP_MANUAL}" ;;
      MAE) wanted+=",${GROUP_MAE}" ;;
      MANUAL) wanted+=",${GROUP_MANUAL}" ;;
      *)
        found=0
        for entry in "${FILES[@]}"; do
          IFS='|' read -r -a cols <<<"${entry}"
          [[ "${cols[0]}" == "${item}" ]] && found=1
        done
        if (( ! found )); then err "unknown weight file '${item}' (see --list)"; return 1; fi
        wanted+=",${item}" ;;
    esac
  done
  for entry in "${FILES[@]}"; do
    IFS='|' read -r -a cols <<<"${entry}"
    [[ ",${wanted}," == *",${cols[0]},"* ]] && printf '%s\n' "${cols[0]}"
  done
  return 0
}

verify_file() {  # verify_file KIND FILE: checkpoint reader + architecture (+ recorded SHA-256)
  local kind="$1" file="$2" sum_args=()
  if [[ -f "${file}.sha256" ]]; then
    sum_args=(--sha256 "$(cut -d' ' -f1 "${file}.sha256")")
  fi
  PYTHONPATH="${SCRIPT_DIR}${PYTHONPATH:+:${PYTHONPATH}}" \
    "${PYTHON}" -m isegm.model.weights verify "${kind}" "${file}" "${sum_args[@]}"
}

record_sum() {  # record_sum FILE: write FILE.sha256 (sha256sum format)
  local file="$1"
  PYTHONPATH="${SCRIPT_DIR}${PYTHONPATH:+:${PYTHONPATH}}" "${PYTHON}" -c \
    'import sys; from isegm.model.weights import sha256_of; print(sha256_of(sys.argv[1]))' \
    "${file}" | sed "s|\$|  ${file##*/}|" >"${file}.sha256"
}

manual_steps() {  # manual_steps NAME TARGET
  local name="$1" target="$2" page file
  file="${target##*/}"
  case "${name}" in
    MST)
      page="${MST_ZOO}"
      cat <<EOF
  MANUAL: the MST checkpoints are in the authors' model zoo (OneDrive/SharePoint, needs a
  browser), linked from the README of github.com/hahamyt/mst (section "Evaluation"):
    1. open ${page}
    2. download the zipped files and extract them; take ${file}
    3. put it at ${target}
    4. verify it: $(basename "$0") --check --only ${name}
EOF
      ;;
    SIMPLECLICK_*)
      page="${SIMPLECLICK_DRIVE}"
      cat <<EOF
  MANUAL: the SimpleClick models are on Google Drive (needs a browser or gdown), linked from
  the README of github.com/uncbiag/SimpleClick (section "Download"):
    1. open ${page}
    2. download ${file} (the COCO+LVIS model)
    3. put it at ${target}
    4. verify it: $(basename "$0") --check --only ${name}
EOF
      ;;
  esac
}

install_file() {
  local name="$1" how kind target
  how="$(field "${name}" 1)"
  kind="$(field "${name}" 2)"
  target="${ROOT}/$(field "${name}" 3)"
  log "[${name}] $(field "${name}" 5)"
  if [[ -f "${target}" ]]; then
    if (( DRY_RUN )); then log "  present: ${target} (would be verified)"; return 0; fi
    verify_file "${kind}" "${target}" || return 1
    [[ -f "${target}.sha256" ]] || record_sum "${target}"
    return 0
  fi
  if (( CHECK_ONLY )); then
    log "  missing: ${target}"
    return 0
  fi
  if [[ "${how}" == "manual" ]]; then
    manual_steps "${name}" "${target}"
    return 0
  fi
  local url="${MAE_URL}/${target##*/}"
  if (( DRY_RUN )); then
    log "  download ${url}"
    log "        -> ${target}"
    return 0
  fi
  fetch_part "${url}" "${target}"
  if ! verify_file "${kind}" "${target}.part"; then
    rm -f "${target}.part"
    err "${url} is not the expected checkpoint; deleted the download"
    return 1
  fi
  mv "${target}.part" "${target}"
  record_sum "${target}"
  log "  saved ${target} (sha256 in ${target##*/}.sha256)"
}

main() {
  while (( $# )); do
    case "$1" in
      --only)
        [[ $# -ge 2 && -n "$2" ]] || { err "--only needs a name list"; usage >&2; exit 2; }
        ONLY="$2"; shift 2 ;;
      --only=*) ONLY="${1#--only=}"; shift ;;
      --mirror)
        [[ $# -ge 2 && -n "$2" ]] || { err "--mirror needs a URL"; usage >&2; exit 2; }
        MAE_URL="${2%/}"; shift 2 ;;
      --mirror=*) MAE_URL="${1#--mirror=}"; MAE_URL="${MAE_URL%/}"; shift ;;
      --root)
        [[ $# -ge 2 && -n "$2" ]] || { err "--root needs a folder"; usage >&2; exit 2; }
        ROOT="$2"; shift 2 ;;
      --root=*) ROOT="${1#--root=}"; shift ;;
      --dry-run) DRY_RUN=1; shift ;;
      --check) CHECK_ONLY=1; shift ;;
      --list) list_files; exit 0 ;;
      -h | --help) usage; exit 0 ;;
      *) err "unknown argument '$1'"; usage >&2; exit 2 ;;
    esac
  done
  if (( DRY_RUN && CHECK_ONLY )); then err "--dry-run and --check exclude each other"; exit 2; fi
  if [[ "${ROOT}" != /* ]]; then ROOT="${PWD}/${ROOT}"; fi
  local selected
  selected="$(resolve_selection "${ONLY}")" || exit 2
  if [[ -z "${selected}" ]]; then err "no weight file selected"; exit 2; fi
  (( DRY_RUN )) && log "dry run: nothing is downloaded or written"

  run_each install_file "${selected}"
  (( RUN_FAILED == 0 )) || exit 1
  log "done"
}

main "$@"
