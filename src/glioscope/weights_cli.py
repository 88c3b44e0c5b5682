"""`glioscope weights`: the named weights of every model and whether they are on disk; `weights fetch NAME`."""

from __future__ import annotations


def add_parser(verbs) -> None:
    parser = verbs.add_parser(
        "weights", help="the named pretrained weights of each model, and whether they are on disk"
    )
    parser.add_argument("--model", default=None, help="only this model")
    parser.add_argument("--urls", action="store_true", help="also show where each file is downloaded from")
    parser.set_defaults(run=_list)
    actions = parser.add_subparsers(dest="weights_action", metavar="ACTION")
    fetch = actions.add_parser(
        "fetch", help="download named weights into torch's cache (the only download glioscope makes)"
    )
    fetch.add_argument(
        "name", metavar="NAME", help="a weights name (imagenet, kinetics, ...) with --model, or a model name"
    )
    fetch.add_argument("--model", default=None, help="the model whose weights NAME means")
    fetch.add_argument("--url", default=None, help="download from here instead (a mirror, or a file:// URL)")
    fetch.add_argument("--overwrite", action="store_true", help="download again when the file is already there")
    fetch.set_defaults(run=_fetch)


def _list(args) -> None:
    import torch

    from glioscope.models.catalogue import catalogue

    rows = catalogue([args.model] if args.model else None)
    header = ("model", "weights", "on disk", "file", "path")
    table = [
        (r.model, r.name, ("yes" if r.on_disk else "no") if r.file else "-", r.file or "-", _where(r)) for r in rows
    ]
    widths = [max(len(str(row[k])) for row in [header, *table]) for k in range(len(header) - 1)]
    for row in [header, *table]:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths)) + "  " + str(row[-1]))
    if args.urls:
        print()
        for url in dict.fromkeys(r.url for r in rows if r.url):
            print(url)
    cached = [r for r in rows if r.file and not r.package]
    print(
        f"\n{sum(r.on_disk for r in cached)} of {len(cached)} on disk in {torch.hub.get_dir()}/checkpoints "
        "(TORCH_HOME). Training never downloads; `glioscope weights fetch NAME --model MODEL` does, on request."
    )
    for r in rows:
        if r.package:
            state = "installed" if r.on_disk else f"not installed: {r.install_hint}"
            print(f"{r.model} {r.name}: from the Python package {r.package} ({state}); never downloaded.")


def _where(row) -> str:
    """The path column: the file, the package to install for it, or the note of a model without weights."""
    if not row.file:
        return row.note
    if row.package and row.path is None:
        return f"package {row.package} (not installed)"
    return str(row.path) + (f" (package {row.package})" if row.package else "")


def _fetch(args) -> None:
    from glioscope.models.catalogue import choose, fetch

    entry = choose(args.name, args.model)
    present = entry.on_disk and not args.overwrite
    path = fetch(entry, url=args.url, overwrite=args.overwrite)
    if entry.package:  # never downloaded: fetch found the installed package's file, or said what to install
        print(f"{entry.model} {entry.name}: on disk, from the Python package {entry.package}: {path}")
        return
    print(f"{entry.model} {entry.name}: {'already on disk' if present else 'downloaded'}: {path}")
