"""Problem 2 in the report: predictor and anti-predictor, training runs, digits, benchmarks."""

from __future__ import annotations

from typing import Any

import numpy as np

from infonorm.quiz.report.benchmarks import benchmark_figures
from infonorm.quiz.report.figures import COLORS, Figures
from infonorm.quiz.report.markup import figure_block, table, value

OUTCOME_COLORS = {"predictor": COLORS[2], "anti-predictor": COLORS[3], "neither": COLORS[7]}
OBJECTIVES = {"mmi": "maximum mutual information", "cross_entropy": "cross-entropy"}


def figures(entries: dict[str, dict[str, Any]], fig: Figures) -> str:
    blocks = []
    anti = _details(entries, "P2.b")
    if "populations" in anti:
        blocks.append(_logit_gap(anti["populations"], fig))
    binary = _details(entries, "P2.train.binary")
    if "counts" in binary:
        blocks.append(_outcome_counts(binary, fig))
    if "curves" in binary:
        blocks.append(_binary_curves(binary["curves"], binary.get("H_y"), fig))
    digits = _details(entries, "P2.train.digits")
    if "runs" in digits:
        blocks.append(_digits(digits, fig))
    blocks.append(benchmark_figures("mutual_information", fig))
    return "".join(blocks)


def _details(entries: dict[str, dict[str, Any]], claim_id: str) -> dict[str, Any]:
    return entries[claim_id]["details"] if claim_id in entries else {}


def _logit_gap(populations: list[dict], fig: Figures) -> str:
    with fig.figure("p2_anti_predictor", ncols=2, size=(11.5, 3.6)) as (_, (left, right)):
        for color, population in zip(COLORS, populations, strict=False):
            sweep = population["logit_gap"]
            gaps = [row["gap"] for row in sweep]
            left.semilogx(
                gaps, [row["I"] for row in sweep], "o-", color=color, label=population["population"]
            )
            left.axhline(population["H_y"], color=color, ls=":", lw=1)
            right.loglog(gaps, [value(row["cross_entropy"]) for row in sweep], "o-", color=color)
        left.set_xlabel("logit gap of the anti-predictor")
        left.set_ylabel("I(y; ŷ) [nats]")
        left.set_title("mutual information → H(y) (dotted)")
        left.legend(fontsize=7.5)
        right.set_xlabel("logit gap of the anti-predictor")
        right.set_ylabel("cross-entropy [nats]")
        right.set_title(
            "cross-entropy grows without bound\n(equal to the gap for every population)",
            fontsize=9.5,
        )
    return figure_block(
        fig.path("p2_anti_predictor"),
        "A binary anti-predictor Q(ŷ = −y | x) = σ(gap), sharpened by raising its logit gap: "
        "its mutual information rises to H(y), the largest any predictor reaches, while its "
        "cross-entropy grows like the gap (+∞ in the limit, the quiz's perfect "
        "anti-predictor).",
    )


def _outcome_counts(binary: dict[str, Any], fig: Figures) -> str:
    counts = binary["counts"]
    outcomes = list(OUTCOME_COLORS)
    with fig.figure("p2_outcomes", size=(6.4, 3.2)) as (_, ax):
        y = np.arange(len(counts))
        left = np.zeros(len(counts))
        for outcome in outcomes:
            widths = np.array([counts[objective].get(outcome, 0) for objective in counts])
            ax.barh(y, widths, left=left, color=OUTCOME_COLORS[outcome], label=outcome)
            for yi, (lo, w) in enumerate(zip(left, widths, strict=True)):
                if w:
                    ax.text(
                        lo + w / 2,
                        yi,
                        str(int(w)),
                        ha="center",
                        va="center",
                        color="white",
                        fontsize=9,
                        fontweight="bold",
                    )
            left += widths
        ax.set_yticks(y, [OBJECTIVES.get(o, o) for o in counts])
        ax.set_xlabel("training runs (seeded random initializations)")
        ax.set_title("where training ends on a separable binary problem")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=3)
    return figure_block(
        fig.path("p2_outcomes"),
        "Each run starts from its own seeded random initialization. Cross-entropy training "
        "always ends as the predictor; mutual-information training ends as the predictor or "
        "as the anti-predictor, both optima of I (each at I ≈ H(y)).",
    )


def _binary_curves(curves: list[dict], H_y: float | None, fig: Figures) -> str:
    with fig.figure("p2_binary_curves", ncols=2, nrows=2, size=(11.5, 6.4)) as (_, axes):
        for row, objective in enumerate(OBJECTIVES):
            for curve in (c for c in curves if c["objective"] == objective):
                color = OUTCOME_COLORS[curve["outcome"]]
                axes[row, 0].plot(curve["steps"], curve["mutual_information"], color=color, lw=1.2)
                axes[row, 1].semilogy(curve["steps"], curve["cross_entropy"], color=color, lw=1.2)
            if H_y is not None:
                axes[row, 0].axhline(H_y, color="gray", ls=":", lw=1)
            axes[row, 0].set_ylabel("I(y; ŷ) [nats]")
            axes[row, 1].set_ylabel("cross-entropy [nats]")
            for ax in axes[row]:
                ax.set_title(f"trained by {OBJECTIVES[objective]}")
                ax.set_xlabel("step")
        handles = [axes[0, 0].plot([], [], color=c, label=o)[0] for o, c in OUTCOME_COLORS.items()]
        axes[0, 0].legend(handles=handles, fontsize=8)
    return figure_block(
        fig.path("p2_binary_curves"),
        "Training curves of a few seeds per outcome, both quantities measured on every run. "
        "Runs that end as anti-predictors climb to I ≈ H(y) (dotted) just as predictors do, "
        "while their cross-entropy rises.",
    )


def _digits(digits: dict[str, Any], fig: Figures) -> str:
    runs = digits["runs"]
    best_mmi = next(
        (r for r in runs if r["objective"] == "mmi" and r["seed"] == digits.get("best_mmi_seed")),
        max(
            (r for r in runs if r["objective"] == "mmi"),
            key=lambda r: r["train_mutual_information"],
        ),
    )
    ce = max(
        (r for r in runs if r["objective"] == "cross_entropy"), key=lambda r: r["raw_accuracy"]
    )
    panels = [
        (ce["confusion"], f"cross-entropy (seed {ce['seed']}): accuracy {ce['raw_accuracy']:.3f}"),
        (
            best_mmi["confusion"],
            f"MMI (seed {best_mmi['seed']}), raw: accuracy {best_mmi['raw_accuracy']:.3f}",
        ),
        (
            best_mmi["confusion_matched"],
            f"the same MMI run after matching: accuracy {best_mmi['matched_accuracy']:.3f}",
        ),
    ]
    with fig.figure("p2_digits_confusion", ncols=3, size=(13.5, 4.4)) as (_, axes):
        for ax, (matrix, title) in zip(axes, panels, strict=True):
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
                        fontsize=6.5,
                        color="white" if v > m.max() / 2 else "black",
                    )
            ax.set_xticks(range(len(m)))
            ax.set_yticks(range(len(m)))
            ax.set_xlabel("predicted column ŷ")
            ax.set_ylabel("true digit y")
            ax.set_title(title, fontsize=9)
    mapping = ", ".join(f"{k}→{v}" for k, v in best_mmi["mapping"].items())
    rows = [
        [
            str(r["seed"]),
            OBJECTIVES[r["objective"]],
            f"{r['train_mutual_information']:.3f}",
            f"{r['test_mutual_information']:.3f}",
            f"{r['raw_accuracy']:.3f}",
            f"{r['matched_accuracy']:.3f}",
        ]
        for r in runs
    ]
    header = [
        "seed",
        "objective",
        "I train [nats]",
        "I test [nats]",
        "raw accuracy",
        "matched accuracy",
    ]
    return (
        figure_block(
            fig.path("p2_digits_confusion"),
            "scikit-learn's digits (10 classes), held-out confusion matrices. Mutual "
            "information does not care which output column stands for which digit, so the "
            "MMI classifier's columns come out permuted; the Hungarian matching "
            f"(scipy's linear_sum_assignment) finds the relabeling ({mapping}) and recovers "
            "an accuracy close to cross-entropy's.",
        )
        + f"<p class='muted'>Every digits run (H(y) on the test set "
        f"{digits.get('H_y_test', float('nan')):.3f} nats):</p>" + table(header, rows)
    )
