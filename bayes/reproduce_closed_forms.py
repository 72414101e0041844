"""Reproduce the closed-form targets listed in bayes/MODEL.md (run: python bayes/reproduce_closed_forms.py)."""

from closed_forms import coverage_beta, first_accepted_of_k, mixture_ceiling, voting_mixture


def main() -> None:
    rows = [
        ("coverage, p ~ Beta(0.3, 2), k=100", coverage_beta(0.3, 2, 100), 0.708),
        ("coverage, p ~ Beta(0.3, 2), k=10,000", coverage_beta(0.3, 2, 10_000), 0.926),
    ]
    ceiling, single = mixture_ceiling([0.87, 0.13], [0.58, 0.42], tpr=1.0, soundness=0.75)
    rows += [("fLaws toy: ceiling", ceiling, 0.716), ("fLaws toy: single sample", single, 0.559)]
    for k, want in ((1, 0.650), (5, 0.678), (10_001, 0.600)):
        rows.append((f"voting, easy .6 at .85 / hard at .35: F({k})", voting_mixture([0.6, 0.4], [0.85, 0.35], k), want))
    peak = max(range(1, 60, 2), key=lambda k: voting_mixture([0.6, 0.4], [0.85, 0.35], k))
    rows.append(("voting: k at the peak", float(peak), 5.0))
    rows.append(("first accepted of 1e6 -> ceiling (p=.5, c=.9, f=.2)", first_accepted_of_k(0.5, 0.9, 0.2, 1e6),
                 0.9 * 0.5 / (0.9 * 0.5 + 0.2 * 0.5)))
    width = max(len(r[0]) for r in rows)
    for name, got, want in rows:
        print(f"{name:<{width}}  got {got:.4f}  target {want:.3f}  {'ok' if abs(got - want) <= 0.01 else 'MISS'}")


if __name__ == "__main__":
    main()
