#!/usr/bin/env python3
"""Pools reid's difference from torchreid over several generated sets.

Each set's difference of mean mAP (reid − torchreid) comes with the standard error of two
independent samples (Welch's); the sets are combined by inverse-variance weights (a
fixed-effect combination: every set measures the same difference, with its own noise), which
is narrower than any set's interval alone. Cochran's Q says whether the sets disagree more
than their noise allows. It takes each side's mean, standard deviation and run count per set
(compare_seeds.py's summary prints them), so sets summarized on other machines pool too.

    pool_sets.py A=74.0,3.1,10,75.1,2.6,10 B=81.4,2.7,36,82.3,2.3,20
"""

import argparse
import math


def parse(text):
    name, values = text.split("=", 1)
    ma, sa, na, mb, sb, nb = (float(v) for v in values.split(","))
    if min(na, nb) < 2 or min(sa, sb) < 0:
        raise argparse.ArgumentTypeError(f"{text}: two runs a side and a spread are needed")
    return name, (ma, sa, int(na)), (mb, sb, int(nb))


def welch(a, b):
    """Difference of means, its standard error and Welch's degrees of freedom."""
    (ma, sa, na), (mb, sb, nb) = a, b
    va, vb = sa * sa / na, sb * sb / nb
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va * va / (na - 1) + vb * vb / (nb - 1))
    return ma - mb, se, df


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("sets", nargs="+", type=parse,
                   metavar="NAME=REID_MEAN,REID_SD,REID_N,TORCHREID_MEAN,TORCHREID_SD,TORCHREID_N")
    args = p.parse_args()
    from scipy import stats

    weights, deltas = [], []
    print("| set | reid | torchreid | Δ [95 % CI] | Welch p |")
    print("|---|---|---|---|---|")
    for name, a, b in args.sets:
        d, se, df = welch(a, b)
        h = stats.t.ppf(0.975, df) * se
        pv = 2 * stats.t.sf(abs(d) / se, df)
        print(f"| {name} | {a[0]:.1f} ± {a[1]:.1f} ({a[2]}) | {b[0]:.1f} ± {b[1]:.1f} ({b[2]}) "
              f"| {d:+.2f} [{d - h:+.2f}, {d + h:+.2f}] | {pv:.2g} |")
        weights.append(1 / (se * se))
        deltas.append(d)
    w = sum(weights)
    pooled = sum(wi * di for wi, di in zip(weights, deltas)) / w
    se = math.sqrt(1 / w)
    z = pooled / se
    q = sum(wi * (di - pooled) ** 2 for wi, di in zip(weights, deltas))
    print(f"| **pooled** (inverse-variance) | | | **{pooled:+.2f} [{pooled - 1.96 * se:+.2f}, "
          f"{pooled + 1.96 * se:+.2f}]** | {2 * stats.norm.sf(abs(z)):.2g} |")
    if len(deltas) > 1:
        print(f"\nCochran's Q {q:.2f} on {len(deltas) - 1} df, p "
              f"{stats.chi2.sf(q, len(deltas) - 1):.2g} (small p: the sets disagree)")


if __name__ == "__main__":
    main()
