#!/usr/bin/env bash
# Behaviour-preservation check for refactors (issue 19): run the demo evals with fixed
# seeds and print the sha256 of every file a refactor must leave byte-identical.
#   bash scripts/golden_runs.sh OUT [MODELS]
# OUT receives the run folders and OUT/hashes.txt. MODELS (default OUT/models) holds the
# tiny Qwen2-Audio and CLAP checkpoints; pass the same folder to the before and after
# runs so both score with the very same weights. Compare with `diff A/hashes.txt B/hashes.txt`.
set -euo pipefail
out=$(realpath -m "$1"); models=$(realpath -m "${2:-$out/models}")
mkdir -p "$out" "$models"
export CUELAB_THREADS=1 PYTHONHASHSEED=0
if [ ! -e "$models/done" ]; then
  python -c "
import sys
from cuelab.core.models import tiny
tiny.build_qwen2_audio(sys.argv[1] + '/qwen2-audio')
tiny.build_clap(sys.argv[1] + '/clap')
" "$models"
  touch "$models/done"
fi
Q="qwen2-audio:$models/qwen2-audio"
C="clap:$models/clap"
demo=assets/demo/manifest.csv
common=(--bootstrap 200 --workers 1 --threads 1)
cuelab eval --manifest $demo --split test --model reference --model oracle:- \
  --conditions audio-only,correct,conflict,shuffle,corrupt:0.5 --seeds 0,1 \
  "${common[@]}" --out "$out/emotion-ref-oracle" >/dev/null
cuelab eval --manifest $demo --split test --limit 6 --model "$Q" \
  --conditions audio-only,correct,shuffle --seeds 0 \
  "${common[@]}" --out "$out/emotion-qwen" >/dev/null
cuelab eval --manifest $demo --split test --limit 4 --model reference --conditions audio-only,correct \
  --edits "pitch=+2st" "${common[@]}" --out "$out/emotion-edits" >/dev/null
[ -e "$models/sseu-set/manifest.csv" ] || cuelab sseu build --snrs 10,-5 --out "$models/sseu-set" >/dev/null
sm="$models/sseu-set/manifest.csv"
cuelab eval --manifest "$sm" --limit 6 --model oracle --model "$C" --tasks asr,asc,at \
  "${common[@]}" --out "$out/sseu-independent" >/dev/null
cuelab eval --manifest "$sm" --limit 4 --model oracle --model "$Q" --tasks asr,asc,at --max-new-tokens 8 \
  "${common[@]}" --out "$out/sseu-qwen-independent" >/dev/null
cuelab eval --manifest "$sm" --limit 4 --model oracle --model "$Q" --tasks asr,asc,at --joint --max-new-tokens 8 \
  "${common[@]}" --out "$out/sseu-joint" >/dev/null
cuelab eval --manifest "$sm" --limit 4 --model oracle --model "$Q" --tasks asr,asc,at --joint --cot \
  --max-new-tokens 8 --cot-max-new-tokens 8 "${common[@]}" --out "$out/sseu-cot" >/dev/null
cd "$out"
find . -path ./models -prune -o -path ./sseu-set -prune -o -name '*.csv' -print \
  | grep -v '/errors.csv$' | sort | xargs sha256sum > hashes.txt
cat hashes.txt
