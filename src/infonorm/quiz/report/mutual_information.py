"""Problem 2 in the report: the anti-predictor, training runs, digits and its restarts."""

from __future__ import annotations

from typing import Any

import numpy as np

from infonorm.quiz.report.figures import COLORS, Figures, Key
from infonorm.quiz.report.markup import details_of, table, value

# what the problem's statements say, for the verdict at the top of the page
CLAIMS_IN_BRIEF = (
    "a perfect predictor is optimal for both cross-entropy and mutual information, a perfect "
    "anti-predictor for mutual information too, and training by either objective ends where "
    "the quiz says"
)
TITLE = "Problem 2 — maximum mutual information training"
INTRO = (
    r"The quiz compares cross-entropy training with maximizing $I(y, \hat{y})$ of the joint "
    r"$P(y, \hat{y}) = E_x \mathrm{Pop}(y|x) Q(\hat{y}|x)$: a perfect predictor is optimal for "
    "both, and a perfect anti-predictor is optimal for mutual information too. Both are "
    "checked by computation on several populations, against scikit-learn and scipy, and by "
    "training runs from many seeds."
)
OUTCOME_COLORS = {"predictor": COLORS[2], "anti-predictor": COLORS[3], "neither": COLORS[7]}
OBJECTIVES = {"mmi": "maximum mutual information", "cross_entropy": "cross-entropy"}
# drawn so that curves lying on one another all stay visible
MARKERS = ("o", "s", "^", "D")
SIZES = (10, 7.5, 5, 3)


def anti_predictor(entries: dict[str, dict[str, Any]], fig: Figures) -> str:
    populations = details_of(entries, "P2.b").get("populations")
    if not populations:
        return ""
    with fig.panel("p2_anti_predictor-I") as ax:
        for k, population in enumerate(populations):
            sweep = population["logit_gap"]
            ax.semilogx(
                [row["gap"] for row in sweep],
                [row["I"] for row in sweep],
                "-",
                marker=MARKERS[k % 4],
                ms=SIZES[k % 4],
                mfc="none",
                mew=1.4,
                color=COLORS[k],
                lw=1.2,
            )
            ax.axhline(population["H_y"], color=COLORS[k], ls=":", lw=1)
        ax.set_xlabel("logit gap of the anti-predictor")
        ax.set_ylabel(r"$I(y, \hat{y})$ [nats]")
        ax.set_title(r"mutual information rises to $H(y)$ (dotted)")
    with fig.panel("p2_anti_predictor-CE") as ax:
        for k, population in enumerate(populations):
            sweep = population["logit_gap"]
            ax.loglog(
                [row["gap"] for row in sweep],
                [value(row["cross_entropy"]) for row in sweep],
                "-",
                marker=MARKERS[k % 4],
                ms=SIZES[k % 4],
                mfc="none",
                mew=1.4,
                color=COLORS[k],
                lw=1.2,
            )
        ax.set_xlabel("logit gap of the anti-predictor")
        ax.set_ylabel("cross-entropy [nats]")
        ax.set_title("cross-entropy grows without bound")
    keys = [
        Key(COLORS[k], population["population"], "hollow")
        for k, population in enumerate(populations)
    ]
    return fig.block(
        "p2_anti_predictor",
        ["p2_anti_predictor-I", "p2_anti_predictor-CE"],
        r"A binary anti-predictor $Q(\hat{y} = -y \mid x) = \sigma(\mathrm{gap})$, sharpened by "
        r"raising its logit gap: its mutual information rises to $H(y)$, the most any predictor "
        "reaches, while its cross-entropy grows like the gap ($+\\infty$ in the limit, the "
        "quiz's perfect anti-predictor). Where populations give the same values, their "
        "markers, of decreasing size, sit inside one another.",
        claims=["P2.b"],
        keys=keys,
        alt="mutual information and cross-entropy of a sharpening anti-predictor",
    )


def outcomes(entries: dict[str, dict[str, Any]], fig: Figures) -> str:
    counts = details_of(entries, "P2.train.binary").get("counts")
    if not counts:
        return ""
    present = [o for o in OUTCOME_COLORS if any(counts[obj].get(o, 0) for obj in counts)]
    with fig.panel("p2_outcomes", size=(4.8, 2.4)) as ax:
        y = np.arange(len(counts))
        left = np.zeros(len(counts))
        for outcome in present:
            widths = np.array([counts[objective].get(outcome, 0) for objective in counts])
            ax.barh(y, widths, left=left, color=OUTCOME_COLORS[outcome])
            for row, (start, width) in enumerate(zip(left, widths, strict=True)):
                if width:
                    ax.text(
                        start + width / 2,
                        row,
                        str(int(width)),
                        ha="center",
                        va="center",
                        color="white",
                        fontsize=9.5,
                        fontweight="bold",
                    )
            left += widths
        ax.set_yticks(y, ["MMI" if o == "mmi" else "cross-\nentropy" for o in counts])
        ax.set_xlabel("training runs (seeded random initializations)")
        ax.grid(False)
    return fig.block(
        "p2_outcomes",
        ["p2_outcomes"],
        "Where training ends on a separable binary problem. Each run starts from its own "
        "seeded random initialization, the same for both objectives. Cross-entropy training "
        "always ends as the predictor; mutual-information training ends as the predictor or "
        r"as the anti-predictor, both optima of $I$ (each at $I \approx H(y)$).",
        claims=["P2.train.binary"],
        keys=[Key(OUTCOME_COLORS[o], o, "bar") for o in present],
        alt="how many runs end as predictor or anti-predictor",
    )


def binary_curves(entries: dict[str, dict[str, Any]], fig: Figures) -> str:
    binary = details_of(entries, "P2.train.binary")
    curves, H_y = binary.get("curves"), binary.get("H_y")
    if not curves:
        return ""
    names = []
    for objective in OBJECTIVES:
        chosen = [c for c in curves if c["objective"] == objective]
        for quantity in ("mutual_information", "cross_entropy"):
            name = f"p2_binary_curves-{objective}-{quantity}"
            names.append(name)
            with fig.panel(name, size=(4.8, 3.0)) as ax:
                for curve in chosen:
                    ax.plot(
                        curve["steps"],
                        curve[quantity],
                        color=OUTCOME_COLORS[curve["outcome"]],
                        lw=1.2,
                    )
                if quantity == "mutual_information":
                    if H_y is not None:
                        ax.axhline(H_y, color="gray", ls=":", lw=1)
                    ax.set_ylabel(r"$I(y, \hat{y})$ [nats]")
                else:
                    ax.set_yscale("log")
                    ax.set_ylabel("cross-entropy [nats]")
                ax.set_title(f"trained by {OBJECTIVES[objective]}")
                ax.set_xlabel("step")
    shown = list(dict.fromkeys(c["outcome"] for c in curves))
    return fig.block(
        "p2_binary_curves",
        names,
        "Training curves of a few seeds per outcome, both quantities measured on every run, "
        "whichever objective is trained. Runs that end as anti-predictors climb to "
        r"$I \approx H(y)$ (dotted) just as predictors do, while their cross-entropy rises.",
        claims=["P2.train.binary"],
        keys=[Key(OUTCOME_COLORS[o], f"runs that end as the {o}") for o in shown],
        alt="mutual information and cross-entropy during training",
    )


def _best_mmi_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The MMI restart the claim is judged on: the highest training I."""
    return max(
        (r for r in runs if r["objective"] == "mmi"), key=lambda r: r["train_mutual_information"]
    )


def digits_restarts(entries: dict[str, dict[str, Any]], fig: Figures) -> str:
    digits = details_of(entries, "P2.train.digits")
    runs = digits.get("runs")
    if not runs:
        return ""
    mmi = [r for r in runs if r["objective"] == "mmi"]
    ce = [r for r in runs if r["objective"] == "cross_entropy"]
    best = _best_mmi_run(runs)
    with fig.panel("p2_digits_restarts") as ax:
        ce_accuracy = float(np.median([r["raw_accuracy"] for r in ce]))
        ax.axhspan(ce_accuracy - 0.03, ce_accuracy, color=COLORS[0], alpha=0.12, lw=0)
        ax.axhline(ce_accuracy, color=COLORS[0], lw=1.2)
        ax.plot(
            [r["train_mutual_information"] for r in mmi],
            [r["matched_accuracy"] for r in mmi],
            "o",
            color=COLORS[1],
            ms=6,
        )
        ax.plot(
            [best["train_mutual_information"]],
            [best["matched_accuracy"]],
            "o",
            mfc="none",
            mec="black",
            ms=12,
            mew=1.4,
        )
        ax.set_xlabel(r"training $I(y, \hat{y})$ of the restart [nats]")
        ax.set_ylabel("held-out matched accuracy")
        ax.set_title("MMI restarts, picked by training $I$")
    within = digits.get("restarts_within_gap")
    ranking = digits.get("rank_agreement")
    spread = f"{within} of {len(mmi)} restarts end within 0.03 of cross-entropy's accuracy"
    agreement = (
        f" Training I ranks the restarts as their held-out accuracy does (Spearman's rank "
        f"correlation {ranking:.2f}), so the pick, which uses no test label, is not luck."
        if isinstance(ranking, float)
        else ""
    )
    return fig.block(
        "p2_digits_restarts",
        ["p2_digits_restarts"],
        "Every MMI restart on the digits: its training mutual information against its "
        "held-out accuracy under the best relabeling. Restarts settle in different optima "
        "(some merge two digits into one column); the one with the highest training I "
        f"(circled) is the one the claim is judged on; {spread}.{agreement}",
        claims=["P2.train.digits"],
        keys=[
            Key(COLORS[1], "an MMI restart", "dot"),
            Key(COLORS[0], "cross-entropy's accuracy (median of its runs), band: 0.03 below"),
        ],
        alt="training mutual information against held-out accuracy of each restart",
    )


def digits_confusion(entries: dict[str, dict[str, Any]], fig: Figures) -> str:
    digits = details_of(entries, "P2.train.digits")
    runs = digits.get("runs")
    if not runs:
        return ""
    best = _best_mmi_run(runs)
    ce = max(
        (r for r in runs if r["objective"] == "cross_entropy"), key=lambda r: r["raw_accuracy"]
    )
    panels = [
        (ce["confusion"], f"cross-entropy: accuracy {ce['raw_accuracy']:.3f}", "predicted ŷ"),
        (best["confusion"], f"MMI, raw: accuracy {best['raw_accuracy']:.3f}", "output column"),
        (
            best["confusion_matched"],
            f"MMI after matching: accuracy {best['matched_accuracy']:.3f}",
            "relabeled output",
        ),
    ]
    names = []
    for index, (matrix, title, xlabel) in enumerate(panels):
        name = f"p2_digits_confusion-{index + 1}"
        names.append(name)
        with fig.panel(name, size=(4.2, 4.0)) as ax:
            m = np.asarray(matrix, dtype=float)
            ax.imshow(m, cmap="Blues")
            ax.grid(False)
            for (i, j), v in np.ndenumerate(m):
                if v:
                    ax.text(
                        j,
                        i,
                        int(v),
                        ha="center",
                        va="center",
                        fontsize=7.5,
                        color="white" if v > m.max() / 2 else "black",
                    )
            ax.set_xticks(range(len(m)))
            ax.set_yticks(range(len(m)))
            ax.set_xlabel(xlabel)
            ax.set_ylabel("true digit y")
            ax.set_title(title)
    mapping = ", ".join(f"{k}→{v}" for k, v in best["mapping"].items())
    return fig.block(
        "p2_digits_confusion",
        names,
        "scikit-learn's digits (10 classes), held-out confusion matrices of the best "
        "cross-entropy run and of the MMI restart with the highest training I. Mutual "
        "information does not care which output column stands for which digit, so the "
        "MMI classifier's columns come out permuted; the Hungarian matching (scipy's "
        f"linear_sum_assignment) finds the relabeling ({mapping}) and recovers an accuracy "
        "close to cross-entropy's.",
        claims=["P2.train.digits"],
        alt="confusion matrices on the digits",
    )


def digits_runs_table(entries: dict[str, dict[str, Any]]) -> str:
    """Every digits run, for the claim's collapsible details."""
    digits = details_of(entries, "P2.train.digits")
    rows = [
        [
            str(r["seed"]),
            "MMI" if r["objective"] == "mmi" else "cross-entropy",
            f"{r['train_mutual_information']:.3f}",
            f"{r['test_mutual_information']:.3f}",
            f"{r['raw_accuracy']:.3f}",
            f"{r['matched_accuracy']:.3f}",
        ]
        for r in digits.get("runs", [])
    ]
    header = ["seed", "objective", "I train", "I test", "raw accuracy", "matched accuracy"]
    return table(header, rows) if rows else ""


FIGURES = {
    "P2.b": [anti_predictor],
    "P2.train.binary": [outcomes, binary_curves],
    "P2.train.digits": [digits_restarts, digits_confusion],
}
EXTRA_DETAILS = {"P2.train.digits": digits_runs_table}
