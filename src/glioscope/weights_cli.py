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
        (
            r.model,
            r.name,
            ("yes" if r.on_disk else "no") if r.file else "-",
            r.file or "-",
            str(r.path) if r.file else r.note,
        )
        for r in rows
    ]
    widths = [max(len(str(row[k])) for row in [header, *table]) for k in range(len(header) - 1)]
    for row in [header, *table]:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths)) + "  " + str(row[-1]))
    if args.urls:
        print()
        for url in dict.fromkeys(r.url for r in rows if r.url):
            print(url)
    on_disk = sum(r.on_disk for r in rows if r.file)
    print(
        f"\n{on_disk} of {sum(bool(r.file) for r in rows)} on disk in {torch.hub.get_dir()}/checkpoints "
        "(TORCH_HOME). Training never downloads; `glioscope weights fetch NAME --model MODEL` does, on request."
    )


def _fetch(args) -> None:
    from glioscope.models.catalogue import choose, fetch

    entry = choose(args.name, args.model)
    present = entry.on_disk and not args.overwrite
    path = fetch(entry, url=args.url, overwrite=args.overwrite)
    print(f"{entry.model} {entry.name}: {'already on disk' if present else 'downloaded'}: {path}")
