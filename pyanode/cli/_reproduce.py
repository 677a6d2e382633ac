"""`pyanode reproduce NAME`: one paper table or figure set, end to end."""

from __future__ import annotations

import importlib

from pyanode.experiments.dupont import EXPERIMENTS as DUPONT

# experiment name -> module with `describe` (one line), `add_arguments(parser)` and `main(args)`
REPRODUCTIONS = {"table1": "pyanode.experiments.table1", **DUPONT}


def add_parser(sub, name: str) -> None:
    parser = sub.add_parser(
        name,
        help="reproduce a table or figures of the papers",
        description="Reproduce one of the papers' tables or figure sets; results and figures "
        "are written under --out. Run `pyanode reproduce NAME --help` for its options.",
    )
    experiments = parser.add_subparsers(dest="experiment", metavar="NAME", required=True)
    for exp_name, module_name in REPRODUCTIONS.items():
        module = importlib.import_module(module_name)
        exp = experiments.add_parser(exp_name, help=module.describe, description=module.describe)
        module.add_arguments(exp)
        exp.set_defaults(run=module.main)

