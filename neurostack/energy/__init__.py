"""Energy estimates and capacity checks for neuromorphic targets (torch-free, no CLI imports).

    workload   what a network did per inference, per NIR node (filled by neurostack.sim.counters)
    targets    chips' published figures and limits, from targets/*.toml (load_target, list_targets)
    capacity   cores and chips needed, and every violated limit with the node that causes it
    estimate   energy per inference on a target by term, ANN-equivalent and Spikformer-style references, claims
    report     rich tables and the JSON dict; plot: the --plot figure; listing: `neurostack targets` tables
    units      SI formatting (4.1e-6 J -> "4.1 uJ")

    t = load_target("loihi")                  # or a path: load_target("my_chip.toml"); load_targets("all")
    e = estimate(workload, t)                 # e.per_inference (J), e.terms, e.cores, e.chips, e.violations
    ann = ann_equivalent(workload, load_target("cmos45nm"))
    print(comparison_claim(e, ann))
"""
