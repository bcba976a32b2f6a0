#!/usr/bin/env bash
# Download and unpack the interactive-segmentation datasets into the layout config.yml expects.
#
#   ./download_datasets.sh --list                 # what can be fetched, and where it goes
#   ./download_datasets.sh --only eval --dry-run  # show URLs and target folders, touch nothing
#   ./download_datasets.sh --only GrabCut,DAVIS   # fetch two benchmarks
#
# Downloads resume (curl -C - / wget -c), archives are tested (unzip -tq / tar -tf) before they
# are unpacked, and a set whose target folder is already populated is skipped, so the script can
# simply be run again after an interruption. Sets that cannot be fetched automatically (LoveDA
# multi-scale, HQSeg-44K) are explained instead; weights (MAE, MST, SimpleClick) are fetched
# and verified by download_weights.sh.
set -euo pipefail
shopt -s inherit_errexit

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="${SCRIPT_DIR}/datasets"
WEIGHTS_DIR="${SCRIPT_DIR}/weights/pretrained"
ONLY="all"
DRY_RUN=0
KEEP_ARCHIVES=0

FBRS="https://github.com/saic-vul/fbrs_interactive_segmentation/releases/download/v1.0"
RITM="https://github.com/saic-vul/ritm_interactive_segmentation/releases/download/v1.0"
COCO_ZIPS="http://images.cocodataset.org/zips"
COCO_ANNS="http://images.cocodataset.org/annotations"
LVIS_URL="https://s3-us-west-2.amazonaws.com/dl.fbaipublicfiles.com/LVIS"
SBD_URL="http://www.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/semantic_contours/benchmark.tgz"
VOC_URL="http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar"
LOVEDA_URL="https://drive.google.com/file/d/1ryl2uqV99WV9_XUbOWNQbfvYGqGbJFg7/view?usp=sharing"
HQSEG_URL="https://huggingface.co/sam-hq-team/sam-hq-training/tree/main/data"
MAE_URL="https://dl.fbaipublicfiles.com/mae/pretrain"

# name|kind|target (relative to the root)|config.yml key|description
SETS=(
  "GrabCut|auto|GrabCut|GRABCUT_PATH|GrabCut benchmark, 50 images (evaluation)"
  "Berkeley|auto|Berkeley|BERKELEY_PATH|Berkeley benchmark, 96 images (evaluation)"
  "DAVIS|auto|DAVIS|DAVIS_PATH|DAVIS benchmark, 345 frames (evaluation)"
  "COCO_MVal|auto|COCO_MVal|COCO_MVAL_PATH|COCO_MVal benchmark, 800 images (evaluation)"
  "SBD|auto|SBD|SBD_PATH|Semantic Boundaries Dataset (evaluation; config points at SBD/dataset)"
  "PascalVOC|auto|VOC2012|PASCALVOC_PATH|PASCAL VOC 2012 trainval (evaluation: val instances)"
  "COCO|auto|MSCOCO|COCO_PATH|MS COCO 2017 images + panoptic annotations (training, ~20 GB)"
  "LVIS|auto|LVIS|LVIS_v1_PATH|LVIS v1 annotations; images linked from MSCOCO (training)"
  "COCOLVIS|auto|LVIS|LVIS_v1_PATH|RITM COCO+LVIS packed masks, added to LVIS/ (training)"
  "LoveDA|manual|LoveDAMS|IS_LoveDA_PATH|Multi-scale LoveDA, LoveDAMS.zip 1.4 GB (evaluation)"
  "HQSeg44K|manual|HQSeg44K|HQSeg44K_PATH|HQSeg-44K of HQ-SAM (evaluation: val, training: train)"
  "MAE|manual|../weights/pretrained|IMAGENET_PRETRAINED_MODELS|MAE ViT-B/L/H ImageNet weights"
)
EVAL_SETS="GrabCut,Berkeley,DAVIS,COCO_MVal,SBD,PascalVOC,LoveDA,HQSeg44K"
TRAIN_SETS="COCO,LVIS,COCOLVIS,MAE"

usage() {
  cat <<EOF
Usage: $(basename "$0") [--root DIR] [--only NAME[,NAME...]] [--dry-run] [--keep-archives]
       $(basename "$0") --list | --help

Download and unpack datasets into DIR (default: ${SCRIPT_DIR}/datasets), the folders that
config.yml points at. Safe to re-run: downloads resume, populated targets are skipped.

Options:
  --root DIR        where the dataset folders go (update config.yml if not the default)
  --only NAMES      comma-separated set names (case-insensitive) or groups:
                    eval  = ${EVAL_SETS}
                    train = ${TRAIN_SETS}
                    all   = everything (default)
  --list            list the sets, their target folders and config keys, then exit
  --dry-run         print what would be downloaded and where it would go; change nothing
  --keep-archives   keep the downloaded archives (in DIR/.downloads) after unpacking
  -h, --help        show this help

LoveDA (multi-scale), HQSeg44K and MAE need a manual step; for them the script prints
instructions.
EOF
}

# shellcheck source=download_common.sh
source "${SCRIPT_DIR}/download_common.sh"

field() {  # field NAME INDEX -> one column of the SETS entry
  table_field SETS "$1" "$2"
}

list_sets() {
  printf '%-10s %-7s %-40s %-27s %s\n' NAME KIND TARGET CONFIG_KEY DESCRIPTION
  local entry name kind target key desc
  for entry in "${SETS[@]}"; do
    IFS='|' read -r name kind target key desc <<<"${entry}"
    if [[ "${name}" == "MAE" ]]; then target="${WEIGHTS_DIR}"; else target="${ROOT}/${target}"; fi
    printf '%-10s %-7s %-40s %-27s %s\n' "${name}" "${kind}" "${target}" "${key}" "${desc}"
  done
}

canonical_name() {  # case-insensitive lookup of a set name; prints the canonical spelling
  local entry name
  for entry in "${SETS[@]}"; do
    name="${entry%%|*}"
    if [[ "${name,,}" == "${1,,}" ]]; then printf '%s' "${name}"; return 0; fi
  done
  return 1
}

resolve_selection() {  # expands --only into canonical names, one per line, in SETS order
  local requested=() item expanded="" entry name
  IFS=',' read -r -a requested <<<"$1"
  for item in "${requested[@]}"; do
    item="${item// /}"
    [[ -z "${item}" ]] && continue
    case "${item,,}" in
      all) for entry in "${SETS[@]}"; do expanded+="${entry%%|*},"; done ;;
      eval) expanded+="${EVAL_SETS}," ;;
      train) expanded+="${TRAIN_SETS}," ;;
      *)
        if ! name="$(canonical_name "${item}")"; then
          err "unknown dataset '${item}' (see --list)"
          return 2
        fi
        expanded+="${name},"
        ;;
    esac
  done
  for entry in "${SETS[@]}"; do
    name="${entry%%|*}"
    if [[ ",${expanded}" == *",${name},"* ]]; then printf '%s\n' "${name}"; fi
  done
}

populated() {  # a file, or a non-empty folder
  [[ -e "$1" ]] || return 1
  [[ -d "$1" ]] || return 0
  [[ -n "$(ls -A "$1" 2>/dev/null)" ]]
}

require_tools() {
  local tool
  for tool in "$@"; do
    if ! command -v "${tool}" >/dev/null 2>&1; then
      err "'${tool}' is required but not installed"
      return 1
    fi
  done
}

download() {  # download URL FILE: resumable, into FILE.part, renamed when complete
  local url="$1" out="$2"
  if [[ -f "${out}" ]]; then
    log "  archive already downloaded: ${out}"
    return 0
  fi
  if (( DRY_RUN )); then
    log "  download ${url}"
    log "        -> ${out}"
    return 0
  fi
  fetch_part "${url}" "${out}"
  mv "${out}.part" "${out}"
}

verify() {  # verify ARCHIVE: a corrupt archive is deleted so that the next run downloads it again
  local archive="$1"
  (( DRY_RUN )) && return 0
  log "  verifying ${archive##*/}"
  local ok=1
  case "${archive}" in
    *.zip) unzip -tq "${archive}" >/dev/null 2>&1 || ok=0 ;;
    *.tar | *.tar.gz | *.tgz) tar -tf "${archive}" >/dev/null 2>&1 || ok=0 ;;
    *) err "unknown archive type: ${archive}"; return 1 ;;
  esac
  if (( ! ok )); then
    rm -f "${archive}"
    err "${archive} is corrupt or incomplete; deleted it, run the script again to re-download"
    return 1
  fi
}

done_with() {  # done_with ARCHIVE: remove the archive unless --keep-archives
  (( DRY_RUN || KEEP_ARCHIVES )) && return 0
  rm -f "$1"
}

scratch() {  # scratch NAME -> an empty unpack folder under the root
  local dir="${ROOT}/.partial/$1"
  rm -rf "${dir}"
  mkdir -p "${dir}"
  printf '%s' "${dir}"
}

prepare_target() {  # prepare_target DEST: DEST must not exist (an empty folder is removed)
  local dest="$1"
  if [[ -d "${dest}" && -z "$(ls -A "${dest}")" ]]; then
    rmdir "${dest}"
  elif [[ -e "${dest}" || -L "${dest}" ]]; then
    err "${dest} exists but is incomplete; move it away and run the script again"
    return 1
  fi
  mkdir -p "$(dirname "${dest}")"
}

move_single_top() {  # move_single_top SRC DEST: DEST = SRC's only sub-folder, or SRC itself
  local src="$1" dest="$2" entries
  rm -rf "${src}/__MACOSX"
  entries=("${src}"/*)
  prepare_target "${dest}"
  if (( ${#entries[@]} == 1 )) && [[ -d "${entries[0]}" ]]; then
    mv "${entries[0]}" "${dest}"
    rmdir "${src}"
  else
    mv "${src}" "${dest}"
  fi
}

fetch_zip_folder() {  # fetch_zip_folder NAME URL: a zip holding one dataset folder
  local name="$1" url="$2" target="${ROOT}/$1"
  local archive="${ROOT}/.downloads/${url##*/}"
  download "${url}" "${archive}"
  verify "${archive}"
  if (( DRY_RUN )); then log "  unpack -> ${target}"; return 0; fi
  local tmp
  tmp="$(scratch "${name}")"
  unzip -q "${archive}" -d "${tmp}"
  move_single_top "${tmp}" "${target}"
  done_with "${archive}"
}

install_sbd() {
  local target="${ROOT}/SBD" archive="${ROOT}/.downloads/SBD.tgz"
  download "${SBD_URL}" "${archive}"
  verify "${archive}"
  if (( DRY_RUN )); then log "  unpack -> ${target} (data in ${target}/dataset)"; return 0; fi
  local tmp
  tmp="$(scratch SBD)"
  tar -xf "${archive}" -C "${tmp}" --strip-components 1
  prepare_target "${target}"
  mv "${tmp}" "${target}"
  done_with "${archive}"
}

install_voc() {
  local target="${ROOT}/VOC2012" archive="${ROOT}/.downloads/${VOC_URL##*/}"
  download "${VOC_URL}" "${archive}"
  verify "${archive}"
  if (( DRY_RUN )); then log "  unpack -> ${target}"; return 0; fi
  local tmp
  tmp="$(scratch VOC2012)"
  tar -xf "${archive}" -C "${tmp}" --strip-components 1  # VOCdevkit/VOC2012 -> VOC2012
  move_single_top "${tmp}" "${target}"
  done_with "${archive}"
}

install_coco() {
  local coco="${ROOT}/MSCOCO" split archive tmp
  for split in train val; do
    if populated "${coco}/${split}"; then log "  skip ${coco}/${split}: already present"; continue; fi
    archive="${ROOT}/.downloads/${split}2017.zip"
    download "${COCO_ZIPS}/${split}2017.zip" "${archive}"
    verify "${archive}"
    if (( DRY_RUN )); then log "  unpack -> ${coco}/${split}"; continue; fi
    tmp="$(scratch "coco_${split}")"
    unzip -q "${archive}" -d "${tmp}"
    prepare_target "${coco}/${split}"
    mv "${tmp}/${split}2017" "${coco}/${split}"
    rm -rf "${tmp}"
    done_with "${archive}"
  done

  if populated "${coco}/annotations/instances_train2017.json"; then
    log "  skip ${coco}/annotations (instances): already present"
  else
    archive="${ROOT}/.downloads/annotations_trainval2017.zip"
    download "${COCO_ANNS}/annotations_trainval2017.zip" "${archive}"
    verify "${archive}"
    if (( DRY_RUN )); then
      log "  unpack -> ${coco}/annotations"
    else
      mkdir -p "${coco}"
      unzip -q -o "${archive}" -d "${coco}"
      done_with "${archive}"
    fi
  fi

  if populated "${coco}/annotations/panoptic_train.json" \
      && populated "${coco}/annotations/panoptic_val.json"; then
    log "  skip ${coco}/annotations (panoptic): already present"
    return 0
  fi
  archive="${ROOT}/.downloads/panoptic_annotations_trainval2017.zip"
  download "${COCO_ANNS}/panoptic_annotations_trainval2017.zip" "${archive}"
  verify "${archive}"
  if (( DRY_RUN )); then
    log "  unpack -> ${coco}/annotations/panoptic_{train,val}.json, panoptic_{train,val}/"
    return 0
  fi
  tmp="$(scratch coco_panoptic)"
  unzip -q "${archive}" -d "${tmp}"
  mkdir -p "${coco}/annotations"
  for split in train val; do
    unzip -q -o -j "${tmp}/annotations/panoptic_${split}2017.zip" \
      -d "${coco}/annotations/panoptic_${split}"
    mv "${tmp}/annotations/panoptic_${split}2017.json" "${coco}/annotations/panoptic_${split}.json"
  done
  rm -rf "${tmp}"
  done_with "${archive}"
}

link_lvis_images() {  # LVIS/{train,val}/images -> ../../MSCOCO/{train,val} (relative links)
  local split
  for split in train val; do
    if (( DRY_RUN )); then
      log "  link ${ROOT}/LVIS/${split}/images -> ../../MSCOCO/${split}"
      continue
    fi
    mkdir -p "${ROOT}/LVIS/${split}"
    [[ -e "${ROOT}/LVIS/${split}/images" || -L "${ROOT}/LVIS/${split}/images" ]] \
      || ln -s "../../MSCOCO/${split}" "${ROOT}/LVIS/${split}/images"
  done
  [[ -d "${ROOT}/MSCOCO/train" ]] \
    || log "  note: the LVIS image links point at MSCOCO/, download it with --only COCO"
}

install_lvis() {
  local split archive tmp
  for split in train val; do
    local json="${ROOT}/LVIS/${split}/lvis_${split}.json"
    if populated "${json}"; then log "  skip ${json}: already present"; continue; fi
    archive="${ROOT}/.downloads/lvis_v1_${split}.json.zip"
    download "${LVIS_URL}/lvis_v1_${split}.json.zip" "${archive}"
    verify "${archive}"
    if (( DRY_RUN )); then log "  unpack -> ${json}"; continue; fi
    tmp="$(scratch "lvis_${split}")"
    unzip -q "${archive}" -d "${tmp}"
    mkdir -p "${ROOT}/LVIS/${split}"
    mv "${tmp}/lvis_v1_${split}.json" "${json}"
    rm -rf "${tmp}"
    done_with "${archive}"
  done
  link_lvis_images
}

install_cocolvis() {
  local archive="${ROOT}/.downloads/cocolvis_annotation.tar.gz"
  download "${RITM}/cocolvis_annotation.tar.gz" "${archive}"
  verify "${archive}"
  if (( DRY_RUN )); then
    log "  unpack -> ${ROOT}/LVIS/{train,val}/{hannotation.pickle,masks/}"
  else
    mkdir -p "${ROOT}/LVIS"
    tar -xf "${archive}" -C "${ROOT}/LVIS"
    done_with "${archive}"
  fi
  link_lvis_images
}

manual_loveda() {
  cat <<EOF
  MANUAL: multi-scale LoveDA is on Google Drive and needs a browser (or gdown):
    1. download LoveDAMS.zip (1.4 GB) from ${LOVEDA_URL}
    2. unzip it so that ${ROOT}/LoveDAMS/val/ holds images/, masks/, hannotation.pickle
       and lovedams.npy
    3. config.yml: IS_LoveDA_PATH points at ${ROOT}/LoveDAMS (all four LoveDA scales use it)
EOF
}

manual_hqseg() {
  cat <<EOF
  MANUAL: HQSeg-44K is distributed by HQ-SAM on Hugging Face (several zips):
    1. download the data/ folder from ${HQSEG_URL}
    2. unpack it so that ${ROOT}/HQSeg44K/ holds DIS5K/, thin_object_detection/ and
       cascade_psp/ (evaluation needs DIS5K/DIS-VD and thin_object_detection/{ThinObject5K,
       COIFT,HRSOD})
    3. config.yml: HQSeg44K_PATH points at ${ROOT}/HQSeg44K
EOF
}

manual_mae() {
  cat <<EOF
  MANUAL: weights are not datasets: ${SCRIPT_DIR}/download_weights.sh fetches and verifies
    the MAE ImageNet weights (mae_pretrain_vit_base.pth, ..._large, ..._huge from ${MAE_URL})
    into ${WEIGHTS_DIR} and explains how to get the MST and SimpleClick checkpoints:
    ${SCRIPT_DIR}/download_weights.sh --only mae     (or --list to see every file)
    config.yml: IMAGENET_PRETRAINED_MODELS.MAE_{BASE,LARGE,HUGE} point at these files
EOF
}

present_marker() {  # the path whose presence means "this set is already installed"
  case "$1" in
    SBD) printf '%s' "${ROOT}/SBD/dataset" ;;
    PascalVOC) printf '%s' "${ROOT}/VOC2012" ;;
    COCOLVIS) printf '%s' "${ROOT}/LVIS/train/hannotation.pickle" ;;
    LoveDA) printf '%s' "${ROOT}/LoveDAMS" ;;
    HQSeg44K) printf '%s' "${ROOT}/HQSeg44K" ;;
    MAE) printf '%s' "${WEIGHTS_DIR}/mae_pretrain_vit_base.pth" ;;
    COCO | LVIS) printf '' ;;  # several parts, each checked on its own
    *) printf '%s' "${ROOT}/$1" ;;
  esac
}

install_set() {
  local name="$1" marker
  marker="$(present_marker "${name}")"
  if [[ -n "${marker}" ]] && populated "${marker}"; then
    log "[${name}] skip: already present in ${marker}"
    return 0
  fi
  log "[${name}] $(field "${name}" 4)"
  case "${name}" in
    GrabCut | Berkeley | DAVIS | COCO_MVal) fetch_zip_folder "${name}" "${FBRS}/${name}.zip" ;;
    SBD) install_sbd ;;
    PascalVOC) install_voc ;;
    COCO) install_coco ;;
    LVIS) install_lvis ;;
    COCOLVIS) install_cocolvis ;;
    LoveDA) manual_loveda ;;
    HQSeg44K) manual_hqseg ;;
    MAE) manual_mae ;;
    *) err "no installer for ${name}"; return 1 ;;
  esac
}

main() {
  while (( $# )); do
    case "$1" in
      --root)
        [[ $# -ge 2 && -n "$2" ]] || { err "--root needs a folder"; usage >&2; exit 2; }
        ROOT="$2"; shift 2 ;;
      --root=*) ROOT="${1#--root=}"; shift ;;
      --only)
        [[ $# -ge 2 && -n "$2" ]] || { err "--only needs a name list"; usage >&2; exit 2; }
        ONLY="$2"; shift 2 ;;
      --only=*) ONLY="${1#--only=}"; shift ;;
      --dry-run) DRY_RUN=1; shift ;;
      --keep-archives) KEEP_ARCHIVES=1; shift ;;
      --list) list_sets; exit 0 ;;
      -h | --help) usage; exit 0 ;;
      *) err "unknown argument '$1'"; usage >&2; exit 2 ;;
    esac
  done
  [[ -n "${ROOT}" ]] || { err "--root is empty"; exit 2; }
  if [[ "${ROOT}" != /* ]]; then ROOT="${PWD}/${ROOT}"; fi

  local selected
  selected="$(resolve_selection "${ONLY}")" || exit 2
  if [[ -z "${selected}" ]]; then err "no dataset selected"; exit 2; fi

  if (( ! DRY_RUN )); then
    local name needs_fetch=0
    while read -r name; do
      [[ "$(field "${name}" 1)" == "auto" ]] && needs_fetch=1
    done <<<"${selected}"
    if (( needs_fetch )); then
      require_tools unzip tar || exit 1
      if ! command -v curl >/dev/null 2>&1 && ! command -v wget >/dev/null 2>&1; then
        err "neither curl nor wget is installed"; exit 1
      fi
      mkdir -p "${ROOT}"
    fi
  fi
  (( DRY_RUN )) && log "dry run: nothing is downloaded or written"
  log "dataset root: ${ROOT}"

  run_each install_set "${selected}"
  if [[ "${ROOT}" != "${SCRIPT_DIR}/datasets" ]]; then
    log "note: the root differs from the default; point the *_PATH keys of config.yml at ${ROOT}"
  fi
  (( RUN_FAILED == 0 )) || exit 1
  log "done"
}

main "$@"
