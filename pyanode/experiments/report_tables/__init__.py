"""The generated regions of the docs: one function per region, from the committed results
under `docs/data/<job>/` to Markdown (see `pyanode.experiments.report`), in one module per
document; `REGIONS` names each region's document and renderer.

Every region ends with its source: the command, the machine, the library versions, the commit
and the date of the run it comes from, and a link to the full provenance (its settings).
A region says nothing the results do not hold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pyanode.experiments.report_tables.benchmarks import (
    bench_floor,
    bench_memory,
    bench_precision,
    bench_profile,
    bench_scaling,
    bench_solve,
    bench_targets,
    bench_training,
)
from pyanode.experiments.report_tables.common import Data
from pyanode.experiments.report_tables.experiments import (
    dupont_1d,
    dupont_generalisation,
    dupont_images,
    dupont_nfe,
    dupont_trials,
    readme_main_job,
    runtimes,
    table1_figure2,
    table1_main,
    table1_paper,
)
from pyanode.experiments.report_tables.fidelity import (
    fidelity_depth_variant,
    fidelity_images_mnist,
    fidelity_mnist_cost,
    fidelity_slice_gap,
    fidelity_table1_epoch,
    fidelity_verdicts,
)
from pyanode.experiments.report_tables.studies import (
    controller_study,
    study_batch_coupling,
    study_cross_solver,
    study_forward,
    study_gradient,
    study_reference,
)


@dataclass(frozen=True)
class RegionSpec:
    document: str
    render: Callable[[Data], str]


REGIONS: dict[str, RegionSpec] = {
    "readme-main-job": RegionSpec("README.md", readme_main_job),
    "runtimes": RegionSpec("docs/experiments.md", runtimes),
    "table1-paper": RegionSpec("docs/experiments.md", table1_paper),
    "table1": RegionSpec("docs/experiments.md", table1_main),
    "table1-figure2": RegionSpec("docs/experiments.md", table1_figure2),
    "dupont-1d": RegionSpec("docs/experiments.md", dupont_1d),
    "dupont-flows": RegionSpec("docs/experiments.md", dupont_trials("dupont-flows", nfe=True)),
    "dupont-features": RegionSpec("docs/experiments.md",
                                  dupont_trials("dupont-features", nfe=False)),
    "dupont-nfe": RegionSpec("docs/experiments.md", dupont_nfe("dupont-nfe", paper=True)),
    "dupont-nfe-50": RegionSpec("docs/experiments.md", dupont_nfe("dupont-nfe-50", paper=False)),
    "dupont-generalisation": RegionSpec(
        "docs/experiments.md", dupont_generalisation("dupont-generalisation", paper=True)),
    "dupont-generalisation-50": RegionSpec(
        "docs/experiments.md", dupont_generalisation("dupont-generalisation-50", paper=False)),
    "dupont-images": RegionSpec("docs/experiments.md", dupont_images),
    "fidelity-verdicts": RegionSpec("docs/experiments.md", fidelity_verdicts),
    "fidelity-overview": RegionSpec("docs/fidelity.md", fidelity_verdicts),
    "fidelity-mnist-cost": RegionSpec("docs/fidelity.md", fidelity_mnist_cost),
    "fidelity-images-mnist": RegionSpec("docs/fidelity.md", fidelity_images_mnist),
    "fidelity-depth-variant": RegionSpec("docs/fidelity.md", fidelity_depth_variant),
    "fidelity-slice-gap": RegionSpec("docs/fidelity.md", fidelity_slice_gap),
    "fidelity-table1-epoch": RegionSpec("docs/fidelity.md", fidelity_table1_epoch),
    "study-forward": RegionSpec("docs/studies.md", study_forward),
    "study-gradient": RegionSpec("docs/studies.md", study_gradient),
    "study-reference": RegionSpec("docs/studies.md", study_reference),
    "study-cross-solver": RegionSpec("docs/studies.md", study_cross_solver),
    "study-batch-coupling": RegionSpec("docs/studies.md", study_batch_coupling),
    "controller-study": RegionSpec("docs/studies.md", controller_study),
    "bench-training": RegionSpec("benchmarks/README.md", bench_training),
    "bench-solve": RegionSpec("benchmarks/README.md", bench_solve),
    "bench-targets": RegionSpec("benchmarks/README.md", bench_targets),
    "bench-floor": RegionSpec("benchmarks/README.md", bench_floor),
    "bench-memory": RegionSpec("benchmarks/README.md", bench_memory),
    "bench-profile": RegionSpec("benchmarks/README.md", bench_profile),
    "bench-scaling": RegionSpec("benchmarks/README.md", bench_scaling),
    "bench-precision": RegionSpec("benchmarks/README.md", bench_precision),
}  # fmt: skip
