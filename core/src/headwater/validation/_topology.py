"""How events flow: at least one source, destination filters that name real sources and
can match something."""

from __future__ import annotations

from headwater_spec import EVENT_TYPES

from ._paths import format_path
from ._run import Instance, Run
from ._suggest import did_you_mean


def check_topology(run: Run) -> None:
    sources = [i for i in run.instances if i.kind == "source"]
    enabled_sources = [i for i in sources if i.enabled]
    destinations = [i for i in run.instances if i.kind == "destination"]
    broken = run.problems.codes_at(("sources",)) & {"HW013"}
    if not enabled_sources and not broken:
        run.problems.add(
            "HW060",
            ("sources",),
            "no enabled source: nothing can send events; add a [sources.<id>] table "
            '(e.g. `connector = "tracking-api"`)',
        )
    if not any(d.enabled for d in destinations):
        run.problems.add(
            "HW063",
            ("destinations",),
            "no enabled destination: events are stored in the log but delivered nowhere",
        )
    ids = [s.id for s in sources]
    for dest in destinations:
        named = _string_list(run, dest, "sources")
        unknown = False
        if named is not None:
            for index, name in enumerate(named):
                if name not in ids:
                    unknown = True
                    run.problems.add(
                        "HW061",
                        (*dest.path, "sources", index),
                        f"`{format_path(dest.path)}` takes events from source `{name}`, which "
                        f"is not configured{did_you_mean(name, ids)}; the sources are "
                        f"{', '.join(ids) or 'none'}",
                    )
        if dest.enabled and enabled_sources and not unknown:
            _check_reachable(run, dest, named, enabled_sources)


def _string_list(run: Run, inst: Instance, key: str) -> list[str] | None:
    value = inst.resolved.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return None
    if run.problems.codes_at((*inst.path, key)):
        return None
    return value


def _check_reachable(
    run: Run, dest: Instance, named: list[str] | None, enabled_sources: list[Instance]
) -> None:
    feeding = [s for s in enabled_sources if named is None or s.id in named]
    if not feeding:
        run.problems.add(
            "HW062",
            (*dest.path, "sources"),
            f"`{format_path(dest.path)}` can never receive an event: its `sources` filter "
            "matches no enabled source",
        )
        return
    emitted: set[str] = set()
    accepted: set[str]
    for source in feeding:
        emitted.update(source.loaded.spec.event_types if source.loaded else EVENT_TYPES)
    accepted = set(dest.loaded.spec.event_types if dest.loaded else EVENT_TYPES)
    wanted_list = _string_list(run, dest, "events")
    wanted: set[str] = set(wanted_list) if wanted_list is not None else set(EVENT_TYPES)
    if "events" in dest.resolved and wanted_list is None:
        return
    if emitted & accepted & wanted:
        return
    run.problems.add(
        "HW062",
        (*dest.path, "events") if wanted_list is not None else dest.path,
        f"`{format_path(dest.path)}` can never receive an event: its sources emit "
        f"{_names(emitted)}, `{dest.connector}` accepts {_names(accepted)}"
        + (f" and its `events` filter keeps {_names(wanted)}" if wanted_list is not None else "")
        + "; these have no type in common",
    )


def _names(types: set[str]) -> str:
    ordered = [t for t in EVENT_TYPES if t in types]
    return ", ".join(ordered) if ordered else "nothing"
