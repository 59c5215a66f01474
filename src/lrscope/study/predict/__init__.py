"""``strategy="predict"``: the schedule study at a fraction of its cost.

Every candidate is first *probed* (:mod:`.probes`: one short run with its schedule compressed, a
study of its own in the folder; with ``lr_scales`` at higher LRs, as a shorter run prefers). A
few ordinary trials at full length (the best-probed, then the best the law predicts; two *fit
runs* where a run is too short to probe) and the probes identify a loss-curve law (:mod:`.law`:
the multi-power law of Luo et al. 2025 and the LR-annealing law of Tissue et al. 2024); the law
predicts every candidate's final selection metric with an interval (:mod:`.strategy`); a
*self-check* trains a candidate the law was not fitted on and compares; the candidates the law
cannot separate from the best are then trained, and given seeds, as a race (:mod:`.race`) until the
best is separated or the budget (a fraction of the full study's trial steps) is spent. The best
is always a trained candidate; a prediction is never shown as a measurement
(:mod:`lrscope.study.store.predictions`: what is kept beside the store, DIR/predictions.json,
and read by the report).
"""
