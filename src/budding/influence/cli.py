"""``budding influence``: rank opinion leaders, choose seeds, simulate campaigns.

SOURCE is an edge-list file (SNAP text or CSV, gzip'd or not), or ``--program
SLUG`` for a program's own member graph; see docs/influence.md for formats,
conventions and every ``--json`` output.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from budding.influence.measures import MAX_RUNS, MEASURES, MIN_EPSILON

# The engine (numpy, numba) is imported inside the commands: every `budding`
# command imports this module to build its help, and should start fast.
if TYPE_CHECKING:
    from budding.influence.graph import Graph

app = typer.Typer(
    help="Influence: rank opinion leaders, choose seeds with IMM, simulate campaigns.",
    no_args_is_help=True,
)

err = Console(stderr=True)
out = Console()


def _fail(message: str) -> typer.Exit:
    # one line whatever the terminal's width; ids and paths may hold "[...]" (not markup)
    err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    return typer.Exit(code=2)


def _engine_error(exc: ValueError) -> typer.Exit:
    """An error from the engine, naming --probability when the edge probabilities were
    at fault (a bad spec, weights out of range, duplicates that would add up)."""
    from budding.influence.probability import ProbabilityError

    return _fail(f"--probability: {exc}" if isinstance(exc, ProbabilityError) else str(exc))


@contextmanager
def _progress(enabled: bool) -> Iterator[Progress]:
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not enabled or not err.is_terminal,
    )
    with progress:
        yield progress


def _callback(progress: Progress, description: str) -> Callable[[int, int], None]:
    task = progress.add_task(description, total=None)

    def update(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    return update


class Source:
    """A loaded graph, with member attributes when it came from a program."""

    def __init__(
        self,
        graph: Graph,
        attributes: dict[str, dict[str, str]] | None = None,
        consented: set[str] | None = None,
        active: set[str] | None = None,
    ) -> None:
        self.graph = graph
        self.attributes = attributes
        self.consented = consented
        self.active = active

    @property
    def is_program(self) -> bool:
        return self.attributes is not None

    def probability(self, given: str | None) -> str:
        return given or ("weighted" if self.is_program else "wc")


def _open_source(
    source: Path | None,
    program: str | None,
    progress: Progress,
    reverse: bool,
    keep_self_loops: bool,
    keep_duplicates: bool,
) -> Source:
    if (source is None) == (program is None):
        raise _fail("give exactly one of SOURCE (an edge-list file) or --program SLUG")
    if program is not None:
        return _load_program(program, progress)
    assert source is not None
    return Source(_load(source, progress, reverse, keep_self_loops, keep_duplicates))


def _load_program(slug: str, progress: Progress) -> Source:
    from budding.core.db import unit_of_work
    from budding.core.errors import BuddingError
    from budding.influence.program import program_graph
    from budding.programs import service as programs

    task = progress.add_task(f"loading program {slug}", total=None)
    try:
        with unit_of_work() as session:
            pg = program_graph(session, programs.get_program(session, slug))
    except BuddingError as exc:
        raise _fail(f"--program: {exc}") from None
    progress.remove_task(task)
    attrs: dict[str, dict[str, str]] = {}
    for member, values in pg.attributes.items():
        for name, value in values.items():
            attrs.setdefault(name, {})[member] = _text(value)
    return Source(pg.graph, attrs, pg.consented, pg.active)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _load(
    source: Path,
    progress: Progress,
    reverse: bool,
    keep_self_loops: bool,
    keep_duplicates: bool,
) -> Graph:
    from budding.influence.graph import Graph, GraphError
    from budding.influence.io import EdgeListError

    try:
        return Graph.from_edgelist(
            source,
            drop_self_loops=not keep_self_loops,
            dedupe=not keep_duplicates,
            reverse=reverse,
            progress=_callback(progress, f"loading {source.name}"),
        )
    except (EdgeListError, GraphError, OSError) as exc:
        raise _fail(f"SOURCE: {exc}") from None


def _client(scheduler: str | None) -> Any:
    if scheduler is None:
        return None
    try:
        from distributed import Client

        if scheduler == "local":
            return Client(processes=False, dashboard_address=None)
        return Client(scheduler, timeout=30)
    except (OSError, TimeoutError, ValueError) as exc:
        raise _fail(f"--scheduler: cannot reach {scheduler}: {exc}") from None


def read_attributes(path: Path, option: str = "--attributes") -> dict[str, dict[str, str]]:
    """Read node attributes: CSV ``id,attr,value`` (long) or ``id,ATTR1,ATTR2…`` (wide).

    Returns ``{attr: {node id: value}}``; ids and values are strings.  Errors name
    ``option``, the command-line option that gave the file.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # a BOM is no header
            reader = csv.reader(f)
            header = [h.strip() for h in next(reader, [])]
            if len(header) < 2:
                raise _fail(f"{option}: {path} needs a header 'id,attr,value' or 'id,ATTR…'")
            rows = list(reader)
    except OSError as exc:
        raise _fail(f"{option}: {exc}") from None
    except UnicodeDecodeError:
        raise _fail(f"{option}: {path} is not UTF-8 text") from None
    attrs: dict[str, dict[str, str]] = {}
    lower = [h.lower() for h in header]
    if lower[:3] in (["id", "attr", "value"], ["id", "attribute", "value"]):
        for row in rows:
            if len(row) >= 3:
                attrs.setdefault(row[1].strip(), {})[row[0].strip()] = row[2].strip()
    else:
        for row in rows:
            for name, value in zip(header[1:], row[1:], strict=False):
                attrs.setdefault(name, {})[row[0].strip()] = value.strip()
    return attrs


def _select(
    graph: Graph, attrs: dict[str, dict[str, str]], spec: str, option: str, where: str
) -> list[Any]:
    """The nodes whose attribute matches ``spec`` (ATTR=VALUE); ``where`` says where the
    attributes came from, for the error messages."""
    from budding.influence.program import listing

    if "=" not in spec:
        raise _fail(f"{option}: '{spec}' must look like ATTR=VALUE")
    name, value = (s.strip() for s in spec.split("=", 1))
    if name not in attrs:
        raise _fail(f"{option}: no attribute '{name}' {where} (known: {listing(attrs)})")
    chosen = []
    for node, v in attrs[name].items():
        if v == value:
            try:
                chosen.append(graph.ids[graph.index_of(node)])
            except KeyError:
                continue
    if not chosen:
        known = listing(attrs[name].values())
        raise _fail(f"{option}: no node of the graph has {name}={value} (known values: {known})")
    return chosen


_SOURCE = typer.Argument(
    None, help="Edge list: 'src dst [weight]' lines or CSV, gzip'd or not (or use --program)."
)
_PROGRAM = typer.Option(
    None, "--program", help="Use this program's own member graph (referrals + interactions)."
)
_REVERSE = typer.Option(False, "--reverse", help="Lines are 'follower followee': flip edges.")
_SELF = typer.Option(False, "--keep-self-loops", help="Keep u→u edges (dropped by default).")
_DUPS = typer.Option(False, "--keep-duplicates", help="Keep multi-edges (merged by default).")
_JSON = typer.Option(False, "--json", help="Print one JSON object (see docs/influence.md).")
_SEED = typer.Option(0, "--seed", help="Random seed: same seed, same answer.")
_PROB = typer.Option(
    None,
    "--probability",
    help="wc | uniform:P | trivalency | file | weighted (default: wc for files, "
    "weighted for --program)",
)
_SCHED = typer.Option(
    None, "--scheduler", help="Dask scheduler address (tcp://host:8786) or 'local'."
)


@app.command("rank")
def rank_command(
    source: Path | None = _SOURCE,
    program: str | None = _PROGRAM,
    top: int = typer.Option(20, "--top", min=1, help="How many leaders to list."),
    by: str = typer.Option("reach", "--by", help=f"Sort by one of: {', '.join(MEASURES)}."),
    groups: Path | None = typer.Option(
        None, "--groups", help="CSV 'id,group': list the top leaders within each group."
    ),
    group_by: str | None = typer.Option(
        None, "--group-by", help="With --program: a member attribute to group leaders by."
    ),
    rr_sets: int = typer.Option(100_000, "--rr-sets", min=1000, help="RR sets for reach."),
    probability: str | None = _PROB,
    model: str = typer.Option("ic", "--model", help="ic | lt (for reach)"),
    seed: int = _SEED,
    scheduler: str | None = _SCHED,
    reverse: bool = _REVERSE,
    keep_self_loops: bool = _SELF,
    keep_duplicates: bool = _DUPS,
    as_json: bool = _JSON,
) -> None:
    """Rank opinion leaders: reach, PageRank, betweenness, coreness, degrees."""
    from budding.influence.program import listing
    from budding.influence.ranking import leaders_by_group, rank

    if by not in MEASURES:
        raise _fail(f"--by: '{by}' is not one of {', '.join(MEASURES)}")
    if model not in ("ic", "lt"):
        raise _fail(f"--model: '{model}' must be ic or lt")
    with _progress(True) as progress:
        src = _open_source(source, program, progress, reverse, keep_self_loops, keep_duplicates)
        graph = src.graph
        task = progress.add_task("ranking", total=len(MEASURES))
        client = _client(scheduler)

        def step(name: str) -> None:
            progress.update(task, description=f"ranking: {name}", advance=1)

        try:
            ranking = rank(
                graph, None if groups or group_by else top, by=by, rr_sets=rr_sets,
                probability=src.probability(probability), model=model, seed=seed,
                scheduler=client,
                progress=step,
            )  # fmt: skip
        except ValueError as exc:
            raise _engine_error(exc) from None
        finally:
            if client is not None:
                client.close()
    if groups is not None or group_by is not None:
        if group_by is not None:
            if src.attributes is None:
                raise _fail("--group-by needs --program (use --groups FILE for files)")
            mapping = {m: v for m, v in src.attributes.get(group_by, {}).items() if v}
            if not mapping:
                raise _fail(
                    f"--group-by: no member has the attribute '{group_by}' "
                    f"(known: {listing(src.attributes)})"
                )
        else:
            assert groups is not None
            attrs = read_attributes(groups, "--groups")
            column = next(iter(attrs)) if attrs else None
            mapping = dict(attrs[column]) if column else {}
            if not mapping:
                raise _fail(f"--groups: {groups} has no 'id,group' rows")
        per_group = leaders_by_group(graph, mapping, top, ranking=ranking)
        if as_json:
            payload = {
                "by": by,
                "measures": list(MEASURES),
                "groups": {str(k): v.rows() for k, v in per_group.items()},
            }
            print(json.dumps(payload))
            return
        for name, r in per_group.items():
            _print_ranking(r, f"{name}")
        return
    if as_json:
        print(json.dumps(ranking.to_json()))
        return
    _print_ranking(ranking, f"Top {len(ranking)} of {graph.n:,} by {by}")


def _print_table(table: Table) -> None:
    """Print at the table's natural width when stdout is a file or a pipe: cut to the
    default 80 columns, long ids (UUIDs) and headers ended in "…"."""
    from rich.measure import Measurement

    if out.is_terminal:
        out.print(table)
        return
    width = Measurement.get(out, out.options.update_width(100_000), table).maximum
    Console(width=max(width, out.width)).print(table)  # print(width=…) is capped at out.width


def _print_ranking(ranking: Any, title: str) -> None:
    table = Table(title=title)
    table.add_column("#", justify="right")
    table.add_column("id")
    for name in ranking.measures:
        table.add_column(name, justify="right")
    for row in ranking.rows():
        cells = [str(row["rank"]), str(row["id"])]
        for name in ranking.measures:
            v = row[name]
            cells.append(f"{v:,}" if isinstance(v, int) else f"{v:.4g}")
        table.add_row(*cells)
    _print_table(table)


@app.command("seeds")
def seeds_command(
    source: Path | None = _SOURCE,
    program: str | None = _PROGRAM,
    k: int = typer.Option(50, "--k", min=1, help="Number of seeds."),
    model: str = typer.Option("ic", "--model", help="ic | lt"),
    epsilon: float = typer.Option(0.5, "--epsilon", help="IMM accuracy ε (0.01 ≤ ε < 1)."),
    ell: float = typer.Option(1.0, "--ell", help="IMM confidence: success ≥ 1 − 1/n^ℓ."),
    probability: str | None = _PROB,
    target: str | None = typer.Option(
        None, "--target", help="Only nodes with ATTR=VALUE count towards spread."
    ),
    allowed: str | None = typer.Option(
        None, "--allowed", help="Only nodes with ATTR=VALUE may be seeds (e.g. consent=yes)."
    ),
    attributes: Path | None = typer.Option(
        None, "--attributes", help="CSV 'id,attr,value' or 'id,ATTR1,ATTR2…' for --target."
    ),
    consented_only: bool = typer.Option(
        False, "--consented-only", help="With --program: only members with marketing consent."
    ),
    active_only: bool = typer.Option(
        False, "--active-only", help="With --program: only members active in the last 30 days."
    ),
    seed: int = _SEED,
    scheduler: str | None = _SCHED,
    reverse: bool = _REVERSE,
    keep_self_loops: bool = _SELF,
    keep_duplicates: bool = _DUPS,
    as_json: bool = _JSON,
) -> None:
    """Choose the k seeds with the largest expected spread (IMM)."""
    from budding.influence.maximization import imm

    if model not in ("ic", "lt"):
        raise _fail(f"--model: '{model}' must be ic or lt")
    if not MIN_EPSILON <= epsilon < 1:
        raise _fail(f"--epsilon: {epsilon} must be at least {MIN_EPSILON} and below 1")
    if ell <= 0:
        raise _fail(f"--ell: {ell} must be positive")
    if (target or allowed) and attributes is None and program is None:
        raise _fail("--target/--allowed need --attributes FILE with the node attributes")
    if (consented_only or active_only) and program is None:
        raise _fail("--consented-only/--active-only need --program")
    with _progress(True) as progress:
        src = _open_source(source, program, progress, reverse, keep_self_loops, keep_duplicates)
        graph = src.graph
        attrs = read_attributes(attributes) if attributes is not None else src.attributes or {}
        where = "in --attributes" if attributes is not None else "among the program's members"
        targets = _select(graph, attrs, target, "--target", where) if target else None
        candidates = _select(graph, attrs, allowed, "--allowed", where) if allowed else None
        for flag, pool in (("consented", consented_only), ("active", active_only)):
            if pool:
                members = src.consented if flag == "consented" else src.active
                keep = [graph.ids[graph.index_of(m)] for m in sorted(members or ())]
                if candidates is not None:
                    allowed_now = set(candidates)
                    keep = [m for m in keep if m in allowed_now]
                if not keep:
                    raise _fail(f"--{flag}-only: no member is eligible as a seed")
                candidates = keep
        client = _client(scheduler)
        try:
            result = imm(
                graph, k, model=model, epsilon=epsilon, ell=ell,
                probability=src.probability(probability), seed=seed, targets=targets,
                candidates=candidates, scheduler=client,
                progress=_callback(progress, "sampling RR sets"),
            )  # fmt: skip
        except ValueError as exc:
            raise _engine_error(exc) from None
        finally:
            if client is not None:
                client.close()
    if result.k < k:  # imm chooses among fewer nodes than asked for; stderr keeps --json clean
        err.print(
            f"k lowered from {k} to {result.k}: only {result.k} nodes may be chosen as seeds",
            soft_wrap=True,
        )
    if as_json:
        print(json.dumps(result.to_json()))
        return
    audience = "" if target is None else f" among {result.audience:,} with {target}"
    table = Table(
        title=f"{result.k} seeds, {model.upper()}, {result.probability}: estimated spread "
        f"{result.spread:,.1f}{audience} ({result.rr_sets:,} RR sets, {result.seconds:.2f} s)"
    )
    for col in ("#", "id", "marginal", "cumulative"):
        table.add_column(col, justify="right" if col != "id" else "left")
    for i, node in enumerate(result.seeds):
        table.add_row(
            str(i + 1), str(node), f"{result.marginal[i]:,.1f}", f"{result.cumulative[i]:,.1f}"
        )
    _print_table(table)


@app.command("simulate")
def simulate_command(
    source: Path | None = _SOURCE,
    program: str | None = _PROGRAM,
    seeds: str | None = typer.Option(None, "--seeds", help="Comma-separated seed ids."),
    seeds_file: Path | None = typer.Option(
        None, "--seeds-file", help="Seed ids, one per line (or a seeds --json output)."
    ),
    runs: int = typer.Option(10_000, "--runs", min=1, max=MAX_RUNS, help="Monte-Carlo runs."),
    launch_cost: list[float] = typer.Option(
        [1.0], "--launch-cost", help="Steps to share (1 = one tap); repeat to compare plans."
    ),
    reward: float = typer.Option(0.0, "--reward", min=0.0, help="Reward per share (odds ×(1+r))."),
    funnel: str | None = typer.Option(
        None, "--funnel", help="Measured step conversion rates, e.g. 0.8,0.5,0.2, to calibrate."
    ),
    saturation: float = typer.Option(0.8, "--saturation", help="Repeat-exposure factor s."),
    max_steps: int = typer.Option(50, "--max-steps", min=1, help="Steps simulated at most."),
    probability: str | None = _PROB,
    seed: int = _SEED,
    scheduler: str | None = _SCHED,
    reverse: bool = _REVERSE,
    keep_self_loops: bool = _SELF,
    keep_duplicates: bool = _DUPS,
    as_json: bool = _JSON,
) -> None:
    """Simulate a campaign from given seeds: reach with 95 % interval, per step, K."""
    from budding.influence.campaign import Plan, ShareModel, calibrate, compare

    seed_ids = _seed_ids(seeds, seeds_file)
    if not 0 < saturation <= 1:
        raise _fail(f"--saturation: {saturation} must be in (0, 1]")
    bad_costs = [c for c in launch_cost if not c > 0]
    if bad_costs:
        raise _fail(f"--launch-cost: {bad_costs[0]:g} must be positive (1 = one tap)")
    share = ShareModel(saturation=saturation)
    if funnel:
        try:
            rates = [float(x) for x in funnel.split(",") if x.strip()]
        except ValueError:
            raise _fail(
                f"--funnel: {funnel!r} must be rates separated by commas, e.g. 0.8,0.5"
            ) from None
        try:
            share = calibrate(rates, base=share)
        except ValueError as exc:
            raise _fail(f"--funnel: {exc}") from None
    with _progress(True) as progress:
        src = _open_source(source, program, progress, reverse, keep_self_loops, keep_duplicates)
        graph = src.graph
        missing = []
        for s in seed_ids:
            try:
                graph.index_of(s)
            except KeyError:
                missing.append(s)
        if missing:
            raise _fail(f"--seeds: not in the graph: {', '.join(map(str, missing[:10]))}")
        # the source's own ids (numbers for integer ids), as `seeds --json` writes them
        ids = graph.id_list(graph.index_of(s) for s in seed_ids)
        plans = [Plan(ids, c, reward, name=f"launch cost {c:g}") for c in launch_cost]
        client = _client(scheduler)
        started = time.perf_counter()
        try:
            results = compare(
                graph, plans, runs, share=share, probability=src.probability(probability),
                max_steps=max_steps,
                seed=seed, scheduler=client, progress=_callback(progress, "simulating"),
            )  # fmt: skip
        except ValueError as exc:
            raise _engine_error(exc) from None
        finally:
            if client is not None:
                client.close()
        seconds = time.perf_counter() - started
    if as_json:
        payload = {
            "runs": results[0].runs,
            "seed": seed,
            "seconds": seconds,
            "plans": [r.to_json() for r in results],
        }
        print(json.dumps(payload))
        return
    table = Table(title=f"{len(seed_ids)} seeds, {results[0].runs:,} runs")
    for col in ("plan", "share prob.", "reach", "95% interval", "steps", "K gen 0→1"):
        table.add_column(col, justify="right" if col != "plan" else "left")
    for r in results:
        k0 = f"{r.k_per_generation[0]:.2f}" if r.k_per_generation.shape[0] else "-"
        table.add_row(
            r.name,
            f"{r.share_probability:.3f}",
            f"{r.reach.mean:,.1f}",
            f"{r.reach.ci95[0]:,.1f} – {r.reach.ci95[1]:,.1f}",
            str(r.reach_per_step.shape[0] - 1),
            k0,
        )
    _print_table(table)


def _seed_ids(seeds: str | None, seeds_file: Path | None) -> list[str]:
    if (seeds is None) == (seeds_file is None):
        raise _fail("give exactly one of --seeds a,b,c or --seeds-file FILE")
    if seeds is not None:
        ids = [s.strip() for s in seeds.split(",") if s.strip()]
    else:
        assert seeds_file is not None
        try:
            text = seeds_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise _fail(f"--seeds-file: {exc}") from None
        except UnicodeDecodeError:
            raise _fail(f"--seeds-file: {seeds_file} is not UTF-8 text") from None
        stripped = text.strip()
        if stripped.startswith("{"):
            try:
                ids = [str(s) for s in json.loads(stripped)["seeds"]]
            except (ValueError, KeyError, TypeError):
                raise _fail(f"--seeds-file: {seeds_file} is JSON without a 'seeds' list") from None
        else:
            ids = [ln.split(",")[0].strip() for ln in text.splitlines()]
            ids = [s for s in ids if s and not s.startswith("#")]
    if not ids:
        raise _fail("--seeds/--seeds-file: no seeds given")
    return ids


if __name__ == "__main__":  # pragma: no cover - `python -m budding.influence.cli`
    app()
