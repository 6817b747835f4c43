"""The model card of a registered version (SPEC.md, "ML"; issue 25, point 4): Markdown, logged with the
version as its description (the MLflow UI shows it on the version's page) and as the artifact
`model_card.md` of the best candidate's run.

Built once the quarter's gate has decided, from what training measured: the data window and
cutoffs, rows and churn rate of train and eval, the features, every model's eval metrics with their
95 % intervals beside the baseline's, the calibration plot's points (the plot is an artifact of the
same run), the gate's verdict, the versions before it with their out-of-time figures (their AUC-PR
re-scored on the eval rows of each later quarter they were the previous champion of, tagged on them
by the gate; the newest that fit in `DESCRIPTION_CHARS`), and the known limitations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from batch_platform.ml.candidates import BASELINE, CANDIDATES, PREVIOUS, describe_params
from batch_platform.ml.pipelines import MODEL_INPUTS
from batch_platform.ml.plots import calibration_bins
from batch_platform.ml.registry import RESCORED
from batch_platform.partitions import quarter_start, shift

if TYPE_CHECKING:  # pragma: no cover - typing only: training imports this module's caller
    from batch_platform.ml.training import QuarterModel

DESCRIPTION_CHARS = 5000
"""The longest description of a model version MLflow's SQL stores hold (a VARCHAR(5000) column, which
PostgreSQL and MySQL enforce and SQLite does not): the card leaves out the oldest versions before it
that do not fit."""
LIMITATIONS = (
    "Trained on the customers of one quarter (or of the last `ml.train_quarters`): a quarter unlike them (a "
    "promotion, a new channel) is not represented.",
    "The eval split is a random fifth of the same quarter's customers: the intervals measure sampling noise of those "
    "rows, not drift from one quarter to the next (the out-of-time check of ml/churn_scores does).",
    "On the demo data churn is mostly 'stopped buying': the recency baseline is hard to beat, and the other features "
    "are collinear with it.",
    "Amounts are summed across currencies without conversion.",
    "Probabilities are not recalibrated: read the calibration plot before using them as rates.",
)


def _day(moment) -> str:
    return "?" if moment is None else moment.date().isoformat()


def _interval(row: Mapping, name: str) -> str:
    return f"{row[name]:.4f} [{row[f'{name}_ci_low']:.4f}, {row[f'{name}_ci_high']:.4f}]"


def model_card(outcome: QuarterModel, lookback: int, earlier: Sequence[Mapping[str, str]] = ()) -> str:
    """The Markdown card of the version registered for `outcome`'s best candidate; `lookback`: L of
    the training set; `earlier`: the tags of the versions registered before it (oldest first)."""
    quarter, cutoff = outcome.quarter, quarter_start(outcome.quarter)
    first = shift(quarter, -lookback)
    start, end = outcome.label_window
    lines = [
        f"# Churn model, version {outcome.best_version}: {outcome.best} trained for {quarter}",
        "",
        "## Data window and cutoffs",
        f"- Training set: gold/training_set {quarter}"
        + (
            f" (Delta table `{outcome.training_input.uri}`, version {outcome.training_input.version})"
            if outcome.training_input
            else ""
        ),
        f"- Features at cutoff C = {cutoff.date().isoformat()}: events of silver {first} … {shift(quarter, -1)} "
        f"([{quarter_start(first).date().isoformat()}, {cutoff.date().isoformat()}))",
        f"- Label: 1 when the customer has no operational event in [{_day(start)}, {_day(end)})",
        f"- Train rows: the train split of {', '.join(outcome.pooled)}"
        + (" (pooled, `ml.train_quarters`)" if len(outcome.pooled) > 1 else ""),
        f"- Train: {outcome.train_rows} rows, churn rate {outcome.train_churned / outcome.train_rows:.3f}; "
        f"eval: {outcome.eval_rows} rows, churn rate {outcome.labels.mean():.3f}",
        "",
        "## Features",
        ", ".join(f"`{name}`" for name in MODEL_INPUTS),
        "",
        "## Hyperparameters (chosen on a validation fold of the train rows)",
        *(f"- {name}: {describe_params(chosen)}" for name, chosen in outcome.chosen.items()),
        "",
        "## Eval metrics (95 % bootstrap intervals)",
        "| model | AUC-PR | AUC-ROC | log loss | Brier | top-decile lift |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    rows = {row["candidate"]: row for row in outcome.rows}
    for name in (*(c.name for c in CANDIDATES), BASELINE, PREVIOUS):
        if name in rows:
            row = rows[name]
            shown = f"{name} (v{row['model_version']})" if row["model_version"] else name
            lines.append(
                f"| {shown} | {_interval(row, 'auc_pr')} | {_interval(row, 'auc_roc')} | {row['log_loss']:.4f} | "
                f"{row['brier']:.4f} | {row['lift_top_decile']:.2f} |"
            )
    difference = outcome.difference
    if difference:
        lines.append(
            f"\nChampion − baseline: AUC-PR {difference['auc_pr']:+.4f} "
            f"[{difference['auc_pr_ci_low']:+.4f}, {difference['auc_pr_ci_high']:+.4f}], AUC-ROC "
            f"{difference['auc_roc']:+.4f} [{difference['auc_roc_ci_low']:+.4f}, "
            f"{difference['auc_roc_ci_high']:+.4f}] (paired)."
        )
    lines += [
        "",
        f"## Calibration of {outcome.best} on eval",
        "The plot is the artifact `plots/calibration.png` of this run (beside `plots/pr_curve.png`); its points, "
        "by tenth of the predicted probability:",
        "",
        "| eval rows | mean predicted | observed churn rate |",
        "| --- | --- | --- |",
        *(
            f"| {rows} | {predicted:.3f} | {observed:.3f} |"
            for rows, predicted, observed in calibration_bins(outcome.labels, outcome.probabilities[outcome.best])
        ),
        "",
        "## Promotion gate",
        outcome.gate.describe(),
        "",
        "## Versions before it",
    ]
    limitations = ["", "## Known limitations", *(f"- {text}" for text in LIMITATIONS)]
    shown = list(earlier)
    while True:  # the newest versions before it that fit
        card = "\n".join([*lines, *_versions_before(shown, len(earlier) - len(shown)), *limitations]) + "\n"
        if len(card) <= DESCRIPTION_CHARS or not shown:
            return card
        shown.pop(0)


def _versions_before(shown: Sequence[Mapping[str, str]], left_out: int) -> list[str]:
    if not shown and not left_out:
        return ["None: the first version of this registered model."]
    lines = [
        "| version | quarter | candidate | eval AUC-PR | baseline AUC-PR | AUC-PR on later quarters' eval rows |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for tags in shown:
        later = sorted(
            (name.removeprefix(RESCORED), value) for name, value in tags.items() if name.startswith(RESCORED)
        )
        lines.append(
            f"| {tags['version']} | {tags.get('quarter', '-')} | {tags.get('candidate', '-')} | "
            f"{tags.get('eval_auc_pr', '-')} | {tags.get('baseline_auc_pr', '-')} | "
            f"{', '.join(f'{q}: {float(v):.4f}' for q, v in later) or '-'} |"
        )
    if left_out:
        lines.append(
            f"\nThe {left_out} older version(s) are left out, to keep the card within the {DESCRIPTION_CHARS:,} "
            "characters MLflow stores as a version's description; their tags hold the same figures."
        )
    lines.append(
        "\nOut of time: a version's AUC-PR re-scored on the eval rows of the later quarters it was the "
        "previous champion of; its scores against the labels of the next quarter: `batch-platform ml-report`."
    )
    return lines
