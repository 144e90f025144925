"""Runner: the run of a config: the stages of every AOI with caching and resume, the cluster, the manifest.

    run         which stages run and when, AOIs in parallel, run-level products, the manifest
    cluster     local / threads / SLURM / PBS / an existing scheduler
    budget      the memory plan, checked before any work
    provenance  stage keys, stamps, input hashes, `midr provenance`

Uses: every room and the base modules.
"""

from pipeline.runner.run import STAGES, RunResult, run_pipeline

__all__ = ["STAGES", "RunResult", "run_pipeline"]
