#!/usr/bin/env bash
# The seed's pipeline end to end: synthesise trees, export the shortcut and journey
# sets on the same problems, train one model on each (the journey one in two phases,
# shortcut then journey, as the seed does), evaluate the base model and both trained
# ones on held-out problems, and compare them.
#
#   bash examples/seed-pipeline.sh SYNTH.jsonl EVAL.jsonl WORKDIR
#
# On the embedded model (SmolLM2-135M) synthesise on examples/easy-arithmetic.jsonl:
# it solves almost no MATH500 problem, so MATH500 sessions give no verified long
# thought to train on. With a real policy, pass the same MATH-style file twice (the
# offsets keep the evaluated problems out of the synthesis).
#
# Sizes come from the environment:
#   MODEL=embedded      policy, critic, and the model trained and evaluated
#   TRAIN_OFFSET=0 TRAIN_LIMIT=30   problems of SYNTH.jsonl synthesised on
#   STRATEGIES=debate   one run per strategy, all exported together
#   MAX_TURNS=6         turns per session
#   EVAL_OFFSET=100 EVAL_LIMIT=20   held-out problems of EVAL.jsonl
#   EVAL_TOKENS=256     generation limit per evaluated answer
#   EPOCHS=3            passes over each training set
#   HELD_OUT_LIMIT=20   also evaluate on this many unsynthesised problems of SYNTH.jsonl
#                       (after the training slice; 0 skips it)
# Every step resumes: run the script again after an interruption.
set -euo pipefail

usage="usage: seed-pipeline.sh SYNTH.jsonl EVAL.jsonl WORKDIR"
SYNTH_DATA=${1:?$usage}
EVAL_DATA=${2:?$usage}
WORK=${3:?$usage}
MODEL=${MODEL:-embedded}
TRAIN_OFFSET=${TRAIN_OFFSET:-0}
TRAIN_LIMIT=${TRAIN_LIMIT:-30}
STRATEGIES=${STRATEGIES:-debate}
MAX_TURNS=${MAX_TURNS:-6}
EVAL_OFFSET=${EVAL_OFFSET:-100}
EVAL_LIMIT=${EVAL_LIMIT:-20}
EVAL_TOKENS=${EVAL_TOKENS:-256}
EPOCHS=${EPOCHS:-3}
HELD_OUT_LIMIT=${HELD_OUT_LIMIT:-20}
mkdir -p "$WORK/runs" "$WORK/data" "$WORK/models" "$WORK/evals"

step() { printf '\n== %s (%s)\n' "$1" "$(date +%T)"; }

step "1. synthesise: $STRATEGIES on $TRAIN_LIMIT problems of $SYNTH_DATA"
runs=()
for strategy in $STRATEGIES; do
  journey synth --strategy "$strategy" --dataset "$SYNTH_DATA" --offset "$TRAIN_OFFSET" \
    --limit "$TRAIN_LIMIT" --policy "$MODEL" --critic "$MODEL" --out "$WORK/runs/$strategy" \
    --concurrency 10 --max-turns "$MAX_TURNS" --no-progress
  runs+=("$WORK/runs/$strategy")
done

step "2. export shortcut and journey sets (verified sessions, the same problems)"
journey export "${runs[@]}" --format shortcut --out "$WORK/data/shortcut.jsonl"
journey export "${runs[@]}" --format sft --out "$WORK/data/journey.jsonl"
if [[ ! -s "$WORK/data/journey.jsonl" ]]; then
  echo "no verified long thought to train on: synthesise more problems (TRAIN_LIMIT)" >&2
  exit 1
fi

step "3. train: shortcut, and shortcut then journey"
journey train sft --model "$MODEL" --data "$WORK/data/shortcut.jsonl" \
  --out "$WORK/models/shortcut" --epochs "$EPOCHS" --batch-size 2 --max-length 1024
journey train sft --model "$MODEL" --data "$WORK/data/shortcut.jsonl" \
  --then "$WORK/data/journey.jsonl" --out "$WORK/models/journey" \
  --epochs "$EPOCHS" --batch-size 2 --max-length 1024

step "4. evaluate on $EVAL_LIMIT held-out problems of $EVAL_DATA"
for name in base shortcut journey; do
  spec=$MODEL
  [[ $name != base ]] && spec="hf:$WORK/models/$name"
  journey eval --model "$spec" --dataset "$EVAL_DATA" --offset "$EVAL_OFFSET" \
    --limit "$EVAL_LIMIT" --max-new-tokens "$EVAL_TOKENS" --out "$WORK/evals/$name" --no-progress
done

if (( HELD_OUT_LIMIT > 0 )); then
  step "4b. evaluate on $HELD_OUT_LIMIT unsynthesised problems of $SYNTH_DATA"
  for name in base shortcut journey; do
    spec=$MODEL
    [[ $name != base ]] && spec="hf:$WORK/models/$name"
    journey eval --model "$spec" --dataset "$SYNTH_DATA" \
      --offset "$((TRAIN_OFFSET + TRAIN_LIMIT))" --limit "$HELD_OUT_LIMIT" \
      --max-new-tokens "$EVAL_TOKENS" --out "$WORK/evals/$name-in-domain" --no-progress
  done
fi

step "5. compare"
journey eval compare "$WORK/evals/base" "$WORK/evals/shortcut" "$WORK/evals/journey" \
  --plot "$WORK/evals/by-level.png"
if (( HELD_OUT_LIMIT > 0 )); then
  journey eval compare "$WORK/evals/base-in-domain" "$WORK/evals/shortcut-in-domain" \
    "$WORK/evals/journey-in-domain"
fi
