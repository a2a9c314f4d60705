"""Background jobs of the influence capability."""

from __future__ import annotations

from typing import Any

from budding.core.jobs import JobContext, job


@job(retries=1, retry_delay=30, lease=1800)
def simulate(
    ctx: JobContext,
    plans: list[dict[str, Any]],
    runs: int = 10_000,
    seed: int = 0,
    saturation: float = 0.8,
    funnel: list[float] | None = None,
    target: str | None = None,
    consented_only: bool = False,
    active_only: bool = False,
    max_steps: int = 50,
) -> dict[str, Any]:
    """Simulate each plan on the program's graph; report progress per plan and run.

    Idempotent: it only reads the program's data and returns the result (stored
    on the job row), so a retried attempt redoes the same deterministic work.
    """
    from budding.core.db import unit_of_work
    from budding.influence import service
    from budding.influence.campaign import ShareModel, calibrate
    from budding.influence.campaign import simulate as run_plan
    from budding.programs import service as programs

    assert ctx.program_id is not None
    ctx.progress(0.0, service.STEP_LOADING)
    with unit_of_work() as session:
        program = programs.get_program_by_id(session, ctx.program_id)
        pg = service.load_graph(session, program)
    share = ShareModel(saturation=saturation)
    if funnel:
        share = calibrate(funnel, base=share)
    results = []
    total = len(plans)
    for i, plan in enumerate(plans):
        name = plan.get("name") or f"plan {i + 1}"
        seeds = plan.get("seeds")
        if not seeds:
            ctx.progress(i / total, service.STEP_SEEDS)
            seeds = service.plan_seeds(
                pg, plan["strategy"], int(plan.get("k", 50)), target=target,
                consented_only=consented_only, active_only=active_only, seed=seed,
            )  # fmt: skip

        def tick(done: int, of: int, i: int = i) -> None:
            ctx.progress((i + done / of) / total, service.STEP_SIMULATING)

        result = run_plan(
            pg.graph, seeds, runs, launch_cost=float(plan.get("launch_cost", 1.0)),
            reward=float(plan.get("reward", 0.0)), share=share, probability=service.PROBABILITY,
            max_steps=max_steps, seed=seed, name=name, progress=tick,
        )  # fmt: skip
        out = result.to_json()
        out["seeds"] = [str(s) for s in out["seeds"]]
        out["strategy"] = plan.get("strategy")
        results.append(out)
    ctx.progress(1.0, service.STEP_DONE)
    return {
        "runs": runs,
        "seed": seed,
        "members": pg.graph.n,
        "edges": pg.graph.m,
        "share_model": {
            "base": share.base,
            "half_cost": share.half_cost,
            "steepness": share.steepness,
            "saturation": share.saturation,
        },
        "plans": results,
    }


@job(retries=1, retry_delay=60, lease=1800)
def refresh_ranking(ctx: JobContext) -> dict[str, Any]:
    """Compute and keep the program's ranking for its current data and hour: enqueued by
    a view that found only an older one, or none for a program too large to rank in a
    request (``service.program_ranking``). Ranks in a read-only transaction (no writer
    lock meanwhile), then stores it in a short one."""
    from budding.core.db import reading, unit_of_work
    from budding.influence import cache, service
    from budding.programs import service as programs

    assert ctx.program_id is not None
    with reading() as session:
        program = programs.get_program_by_id(session, ctx.program_id)
        key, start = cache.current_key(session, program)
        payload = service.ranking_payload(session, program, start, ctx.progress)
    ctx.progress(0.95, service.STEP_KEEPING)
    with unit_of_work() as session:
        cache.store(session, ctx.program_id, key, payload)
    return {"members": payload["members"]}
