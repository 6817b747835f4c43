"""A quarter's monitoring pictures: one small HTML page per drift check.

`feature_report` shows, for `gold/customer_features` Q, the PSI of every feature against each
reference beside the warning threshold (a chart), and each feature's distribution in Q over its
references: the shares per bin the PSI was computed from, as bars the browser draws beside the
shares written out. `score_report` draws the histogram of churn_probability in Q and Q-1 and, once
the labels of Q+1 exist, the calibration (mean predicted probability against the realised churn
rate per score bin). The checks write the pages to the lake's report folder
(`batch_platform.monitoring.REPORT_FOLDER`) and link them from their evaluations' metadata.

The distributions are HTML, not a chart: a page has a panel per feature and reference (34 with two
references), and drawing their axes and tick labels with matplotlib was most of the feature-drift
check's time (benchmarks/FINDINGS.md, "The report's distributions in HTML"). The PSI chart, one
axes, is laid out with margins sized from its longest label (`_figure`) rather than measured by
`bbox_inches="tight"`, which draws a chart twice. The score page's two charts are measured.
"""

import base64
import html
import io
from collections.abc import Mapping, Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from batch_platform.drift import Drift

COLOURS = {"previous": "#8c8c8c", "champion": "#d9a441", "current": "#2f6db5"}
CHAR_WIDTH = 0.7
"""A character's width as a share of its font size, generously (labels are not measured)."""
TICK_POINTS = 10.0
"""Matplotlib's default font size (points) of the tick labels drawn here."""
TITLE = 0.35
"""Inches above the axes for its title."""
BAR_PIXELS = 120
"""The width of the longest bar of a distribution panel."""


def _png(figure: Figure, measured: bool = True, alt: str = "") -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, **({"bbox_inches": "tight"} if measured else {}))
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'


def _longest(labels: Sequence[str], points: float) -> float:
    """Inches the longest of `labels` takes in a font of `points` points (estimated, not measured)."""
    return max((len(label) for label in labels), default=0) * CHAR_WIDTH * points / 72


def _figure(width: float, height: float, left: float, bottom: float) -> tuple[Figure, Axes]:
    """One axes of `width` × `height` inches, with `left` and `bottom` inches of margin for its
    labels and `TITLE` inches for its title above: the layout `bbox_inches="tight"` would find."""
    right = 0.15
    size = (left + width + right, TITLE + height + bottom)
    figure = Figure(figsize=size)
    figure.subplots_adjust(
        left=left / size[0], right=1 - right / size[0], bottom=bottom / size[1], top=1 - TITLE / size[1]
    )
    return figure, figure.subplots()


def _page(title: str, parts: Sequence[str]) -> str:
    body = "\n".join(parts)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 8px;text-align:right}"
        "th:first-child,td:first-child{text-align:left}"
        ".panels{display:flex;flex-wrap:wrap;gap:1em 2em;align-items:flex-start}"
        "table.dist td,table.dist th{text-align:left;white-space:nowrap}caption{font-weight:bold;text-align:left}"
        ".bar{display:inline-block;height:.8em;margin-right:4px;vertical-align:middle}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _shares(counts: Sequence[int]) -> list[float]:
    total = sum(counts)
    return [c / total if total else 0.0 for c in counts]


def _bar(share: float, longest: float, colour: str) -> str:
    width = round(BAR_PIXELS * share / longest) if longest else 0
    return f'<span class="bar" style="width:{width}px;background:{colour}"></span>{share:.1%}'


def _panel(name: str, kind: str, reference: str | None, quarter: str, result: Drift) -> str:
    """One feature against one reference: its bins, each with the reference's and the quarter's
    share of customers as a bar scaled to the panel's largest share, and the share written."""
    if not sum(result.reference_counts):
        caption = f"{name}: no values in {reference} ({kind})"
        return f"<table class='dist'><caption>{html.escape(caption)}</caption></table>"
    before, after = _shares(result.reference_counts), _shares(result.current_counts)
    longest = max(before + after)
    rows = "".join(
        f"<tr><td>{html.escape(label)}</td><td>{_bar(b, longest, COLOURS[kind])}</td>"
        f"<td>{_bar(a, longest, COLOURS['current'])}</td></tr>"
        for label, b, a in zip(result.bins, before, after, strict=True)
    )
    return (
        f"<table class='dist'><caption>{html.escape(name)} — PSI {_number(result.psi)} ({kind})</caption>"
        f"<tr><th>bin</th><th>{html.escape(f'{reference} ({kind})')}</th><th>{html.escape(quarter)}</th></tr>"
        f"{rows}</table>"
    )


def _distributions(
    quarter: str,
    references: Mapping[str, str | None],
    found: Mapping[str, Mapping[str, Drift]],
    kinds: Sequence[str],
    features: Sequence[str],
) -> str:
    """Every feature's shares per bin in `quarter` beside each reference's: a panel per feature with
    values in a reference and per reference, drawn by the browser (module docstring)."""
    drawn = [name for name in features if any(sum(found[kind][name].reference_counts) for kind in kinds)]
    if not drawn:
        return "<p>Distributions: no feature has values in a reference quarter.</p>"
    panels = "".join(
        _panel(name, kind, references[kind], quarter, found[kind][name]) for name in drawn for kind in kinds
    )
    return f"<h2>Distributions: the share of the quarter's customers per bin</h2><div class='panels'>{panels}</div>"


def _psi_chart(
    quarter: str,
    references: Mapping[str, str | None],
    found: Mapping[str, Mapping[str, Drift]],
    kinds: Sequence[str],
    features: Sequence[str],
    psi_warn: float,
) -> str:
    """The PSI of every feature against each reference that has one for some feature. A PSI that does
    not exist (no values in the quarter or the reference: an empty quarter, as in a long history, or
    the profile features without a `customers` source) is written "no PSI" where its bar would be: a
    bar of 0 would read as "no drift"."""
    kinds = [kind for kind in kinds if any(found[kind][name].psi is not None for name in features)]
    if not kinds:
        return f"<p>PSI: none, as {html.escape(quarter)} or its references hold no values of any feature.</p>"
    psi_chart, ax = _figure(5.5, 0.3 * len(features) + 0.4, _longest(features, TICK_POINTS) + 0.2, 0.5)
    missing = {kind: [name for name in features if found[kind][name].psi is None] for kind in kinds}
    height = 0.8 / len(kinds)
    for i, kind in enumerate(kinds):
        positions = {name: j + i * height for j, name in enumerate(features)}
        drawn = [name for name in features if name not in missing[kind]]
        ax.barh(
            [positions[name] for name in drawn],
            [found[kind][name].psi for name in drawn],
            height,
            label=f"vs {references[kind]} ({kind})",
            color=COLOURS[kind],
        )
        for name in missing[kind]:
            ax.text(0, positions[name], " no PSI", va="center", fontsize="x-small", color=COLOURS[kind])
    ax.axvline(psi_warn, color="#c0392b", linestyle="--", label=f"warn at {psi_warn}")
    ax.set_yticks([j + 0.4 - height / 2 for j in range(len(features))], features)
    ax.set_ylim(len(features) - 0.3, -0.5)  # top down, every row whole with or without a bar
    ax.set_xlabel("PSI")
    ax.set_title(f"PSI per feature, {quarter}", y=1.0)  # placed, not searched for clear of the labels
    ax.legend(fontsize="small")
    alt = f"PSI per feature in {quarter}" + "".join(
        f"; no PSI against {references[kind]} ({kind}): {', '.join(names)}" for kind, names in missing.items() if names
    )
    return _png(psi_chart, measured=False, alt=alt)


def feature_report(
    quarter: str,
    references: Mapping[str, str | None],
    found: Mapping[str, Mapping[str, Drift] | None],
    rates: Mapping[str, float | None],
    psi_warn: float,
) -> str:
    """The feature-drift page of `quarter` (arguments as `monitoring.feature_drift_result`'s)."""
    features = list(rates)
    kinds = [kind for kind, reference in references.items() if reference and found.get(kind)]
    parts = [
        "<p>References: "
        + ", ".join(f"{kind} = {html.escape(references[kind] or 'none')}" for kind in references)
        + f". Warning threshold: PSI ≥ {psi_warn}.</p>"
    ]
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{_number(rates[name])}</td>"
        + "".join(f"<td>{_number(found[k][name].psi)}</td><td>{_number(found[k][name].ks)}</td>" for k in kinds)
        + "</tr>"
        for name in features
    )
    header = "".join(f"<th>PSI {k}</th><th>KS {k}</th>" for k in kinds)
    parts.append(f"<table><tr><th>feature</th><th>null rate</th>{header}</tr>{rows}</table>")
    if not kinds:
        parts.append("<p>No reference quarter to compare with.</p>")
        return _page(f"Feature drift, gold/customer_features {quarter}", parts)
    parts.append(_psi_chart(quarter, references, found, kinds, features, psi_warn))
    parts.append(_distributions(quarter, references, found, kinds, features))
    return _page(f"Feature drift, gold/customer_features {quarter}", parts)


def score_report(
    quarter: str,
    stats: Mapping[str, float | None],
    histograms: Mapping[str, Sequence[int]],
    calibration: Sequence[tuple[float, float, int]],
) -> str:
    """The score-drift page of `quarter`: `histograms` per quarter label (counts in tenths of
    [0, 1]), `calibration` as (mean predicted, realised rate, customers) per score bin."""
    parts = [
        "<table>"
        + "".join(f"<tr><td>{html.escape(k)}</td><td>{_number(v)}</td></tr>" for k, v in stats.items())
        + "</table>"
    ]
    figure = Figure(figsize=(5, 3))
    ax = figure.subplots()
    for i, (label, counts) in enumerate(histograms.items()):
        colour = COLOURS["current"] if label == quarter else COLOURS["previous"]
        ax.bar(
            [b / 10 + 0.025 + i * 0.05 for b in range(10)],
            _shares(counts),
            0.05,
            color=colour,
            label=label,
            align="edge",
        )
    ax.set(xlabel="churn_probability", ylabel="share of customers", title=f"Scores of {quarter}", xlim=(0, 1))
    ax.legend(fontsize="small")
    parts.append(_png(figure))
    if calibration:
        figure = Figure(figsize=(4, 4))
        ax = figure.subplots()
        ax.plot([0, 1], [0, 1], linestyle=":", color="grey", label="perfect")
        ax.plot(
            [c[0] for c in calibration],
            [c[1] for c in calibration],
            marker="o",
            color=COLOURS["current"],
            label="scores",
        )
        ax.set(
            xlabel="mean predicted churn probability",
            ylabel="realised churn rate (labels of Q+1)",
            title=f"Calibration in time, {quarter}",
        )
        ax.legend(fontsize="small")
        parts.append(_png(figure))
    else:
        parts.append("<p>Calibration: the labels of the next quarter are not in the lake yet.</p>")
    return _page(f"Score drift, ml/churn_scores {quarter}", parts)
