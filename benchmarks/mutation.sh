#!/usr/bin/env bash
# Mutation testing of the core (a benchmark, not part of `make test`): mutmut changes one operator,
# constant or call at a time in each module below and runs the tests that cover the changed function; a
# mutant no test notices ("survived") is a behaviour the suite does not pin down.
#
#   bash benchmarks/mutation.sh [OUT_DIR]        # OUT_DIR/mutation.md (default docs/), about 8 min on 2 cores
#   ONLY="report tables" bash benchmarks/mutation.sh /tmp/out   # one group
#
# Each group of modules runs in a scratch copy of the tracked tree with only its own fast tests (those
# that check its logic directly; the end-to-end runs would make each mutant cost a training run). mutmut is
# installed into a scratch folder (it is not a dependency of the harness), beside .venv's own pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$(mkdir -p "${1:-docs}" && cd "${1:-docs}" && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
MUTMUT_VERSION=3.8.1
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# group name | modules to mutate (space-separated) | the tests that cover them (space-separated)
GROUPS_=(
  "answer's math|harness/capacity/scaling.py harness/capacity/law.py harness/capacity/odds.py harness/capacity/throughput.py harness/capacity/calibration.py harness/capacity/ranking.py|tests/test_answer.py tests/test_throughput.py tests/test_ranking.py tests/test_law.py::test_the_prior_is_the_replications_refit_with_hoffmanns_law_at_one_end_of_its_span tests/test_law.py::test_the_optimum_is_the_lowest_loss_at_its_compute_and_its_tokens_invert_it tests/test_law.py::test_the_compute_optimal_ratio_is_the_laws_own tests/test_law.py::test_odds_sum_to_one_and_name_a_clear_winner_or_the_contenders tests/test_law.py::test_odds_are_reproducible_and_a_wider_speed_band_widens_the_interval tests/test_law.py::test_a_speeds_band_is_where_ninety_percent_of_its_draws_fall tests/test_law.py::test_without_speed_error_the_interval_is_the_laws_own_draws tests/test_law.py::test_a_drawn_law_says_where_it_lies_and_the_draws_follow_their_seed tests/test_readback.py"
  "learning-rate schedule|harness/engine/schedule.py|tests/test_schedule_clock_metrics.py"
  "metric definitions|harness/metrics/definitions.py|tests/test_metric_definitions.py tests/test_schedule_clock_metrics.py tests/test_results.py"
  "report tables|harness/report/table.py harness/report/story.py harness/report/run_page.py|tests/test_report_story.py tests/test_report_table.py tests/test_pages_read.py::test_summary_rows_in_the_registrys_order_with_values_as_it_formats_them_and_units tests/test_report.py::test_table_numbers_ratios_and_best_marks tests/test_report.py::test_repeats_are_aggregated_column_by_column tests/test_report.py::test_page_csv_and_json"
)

SITE=$WORK/site
"$PY" -m pip install -q --disable-pip-version-check --target "$SITE" "mutmut==$MUTMUT_VERSION" 2>&1 | grep -v "^WARNING: Location" || true
rm -rf "$SITE"/pytest* "$SITE"/_pytest "$SITE"/pluggy* "$SITE"/iniconfig* "$SITE"/packaging* "$SITE"/py.py  # .venv's

{
  echo "# Mutation testing of the core"
  echo
  echo "Measured $(date -u +%F) with mutmut $MUTMUT_VERSION on $(nproc) cores (\`bash benchmarks/mutation.sh\`)."
  echo "Score: killed / (killed + survived); a mutant with no covering test counts as survived."
  echo
  echo "| module | mutants | killed | survived | timeout | score |"
  echo "|---|---:|---:|---:|---:|---:|"
} >"$WORK/table.md"
: >"$WORK/survivors.md"

for group in "${GROUPS_[@]}"; do
  IFS='|' read -r name modules tests <<<"$group"
  [[ -z "${ONLY:-}" || "$name" == "$ONLY" ]] || continue  # ONLY="report tables": one group
  copy="$WORK/copy-${name// /-}"
  mkdir -p "$copy"
  git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$copy"  # the working tree
  {  # mutmut reads each list one item per line
    echo "[mutmut]"
    echo "source_paths=harness/"
    echo "only_mutate="
    for module in $modules; do echo "    $module"; done
    echo "pytest_add_cli_args_test_selection="
    for test in $tests; do echo "    $test"; done
    printf '    -k\n    not 1280\n'  # no headless browser per mutant
    echo "also_copy="
    for extra in strategies/ tests/ benchmarks/ docs/ pyproject.toml; do echo "    $extra"; done
  } >"$copy/setup.cfg"
  echo "mutation: $name ($modules)" >&2
  (cd "$copy" && PYTHONPATH="$SITE" "$PY" -m mutmut run >"$copy/run.log" 2>&1) || tail -c 2000 "$copy/run.log" >&2
  (cd "$copy" && PYTHONPATH="$SITE" "$PY" -m mutmut results --all true >"$copy/results.txt" 2>&1) || true
  for module in $modules; do
    dotted=$(echo "${module%.py}" | tr '/' '.')
    lines=$(grep -F "$dotted." "$copy/results.txt" || true)
    count() { echo "$lines" | grep -c ": $1$" || true; }
    killed=$(count killed) survived=$(count survived) timeout=$(count timeout) none=$(count "no tests")
    total=$((killed + survived + timeout + none))
    score=$([ "$total" -gt 0 ] && awk "BEGIN{printf \"%.0f%%\", 100*$killed/($killed+$survived+$none)}" || echo "n/a")
    echo "| \`$module\` ($name) | $total | $killed | $((survived + none)) | $timeout | $score |" >>"$WORK/table.md"
    for mutant in $(echo "$lines" | grep -E ": (survived|no tests)$" | sed 's/^ *//; s/:.*//'); do
      echo "### \`$mutant\`" >>"$WORK/survivors.md"
      echo '```diff' >>"$WORK/survivors.md"
      (cd "$copy" && PYTHONPATH="$SITE" "$PY" -m mutmut show "$mutant" 2>&1 | grep -E '^[-+][^-+]') >>"$WORK/survivors.md" || true
      echo '```' >>"$WORK/survivors.md"
    done
  done
done

{
  cat "$WORK/table.md"
  echo
  echo "## Surviving mutants"
  echo
  echo "Each is either a behaviour still to pin down with a test, or one no test can see (equivalent, or out"
  echo "of mutmut's reach): [mutation-notes.md](mutation-notes.md) says which kind each belongs to."
  echo
  cat "$WORK/survivors.md"
} >"$OUT/mutation.md"
cat "$WORK/table.md"
