"""The app's HTML pages: plain server-rendered HTML, every value escaped; scripts and styles come from /static."""

from __future__ import annotations

from urllib.parse import urlencode

from glioscope import __version__
from glioscope.report.html import esc, interval, number
from glioscope.rundir import REPORT
from glioscope.serve.study import study_panel
from glioscope.serve.vendor import missing
from glioscope.serve.verdict import verdict_html
from glioscope.typicality import warning_line

_NAV = (("/", "Runs"), ("/predict", "Predict"))


def layout(
    title: str, body: list[str], active: str = "", scripts: tuple[str, ...] = (), modules: tuple[str, ...] = ()
) -> str:
    nav = "".join(f'<a href="{href}"{" class=active" if href == active else ""}>{esc(text)}</a>' for href, text in _NAV)
    tags = "".join(f'<script src="/static/{esc(s)}" defer></script>' for s in ("app.js", *scripts)) + "".join(
        f'<script type="module" src="/static/{esc(s)}"></script>' for s in modules
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>{esc(title)} · glioscope</title>\n'
        f'<link rel="stylesheet" href="/static/app.css">\n{tags}\n</head>\n<body>\n'
        f'<header><span class="brand">glioscope</span><nav>{nav}</nav>'
        '<span class="use">research use only · not for diagnosis</span></header>\n<main>\n'
        + "\n".join(body)
        + f"\n</main>\n<footer>glioscope {esc(__version__)} · local app</footer>\n</body>\n</html>\n"
    )


def headline_text(h: dict | None) -> str:
    """'accuracy 0.333 [0.081, 0.697]' (pooled, 95% CI) with the mean ± SD over folds below, as HTML."""
    if not h or h.get("value") is None:
        return '<span class="muted">not evaluated</span>'
    folds = (
        f'<br><span class="ci">{number(h["mean"])} ± {number(h["sd"])} over {h["n_folds"]} folds</span>'
        if h.get("n_folds", 0) > 1 and h.get("mean") is not None
        else ""
    )
    where = "" if h.get("set") == "cv" else f' <span class="ci">({esc(h["set"])} set)</span>'
    return (
        f'<span class="metric">{esc(h["metric"])}</span> <b>{number(h["value"])}</b> '
        f'<span class="ci">{interval(h["ci"])}</span>{where}{folds}'
    )


def runs_page(root_name: str, summaries: list[dict]) -> str:
    if not summaries:
        return layout(
            "Runs",
            [
                f"<h1>Runs in {esc(root_name)}</h1>",
                '<p class="empty">No run here yet. A run folder is what <code>glioscope cv</code>, '
                "<code>train</code>, <code>test</code> or <code>export</code> writes.</p>",
            ],
            "/",
        )
    rows = []
    for s in summaries:
        kind = "" if s["kind"] == "run" else f' <span class="tag">{esc(s["kind"])}</span>'
        leaky = ' <span class="tag leaky">leaky split</span>' if s["leaky"] else ""
        link = f"/run?{urlencode({'id': s['id']})}"
        rows.append(
            f'<tr data-run="{esc(s["id"])}"><td><input type="checkbox" name="run" value="{esc(s["id"])}" '
            f'aria-label="compare {esc(s["id"])}"></td>'
            f'<td class="label"><a href="{esc(link)}">{esc(s["id"])}</a>{kind}{leaky}'
            f'<br><span class="muted" title="{esc(s["description"])}">{esc(s["title"])}</span></td>'
            f"<td>{esc(s['task'] or '–')}</td><td><code>{esc(s['recipe'] or '–')}</code></td>"
            f'<td class="num">{esc(s["patients"] if s["patients"] is not None else "–")}</td>'
            f'<td class="headline">{headline_text(s["headline"])}</td>'
            f'<td class="statement-cell">{esc(s["split_statement"] or "–")}</td></tr>'
        )
    return layout(
        "Runs",
        [
            f"<h1>Runs in {esc(root_name)}</h1>",
            f'<p class="muted">{len(summaries)} run(s). Patient-level headline of the cross-validation, pooled over '
            "folds, with its 95% bootstrap interval over patients. Tick two or more runs to compare them.</p>",
            '<form method="get" action="/compare" id="compare-form">',
            '<table class="runs"><thead><tr><th></th><th>Run</th><th>Task</th><th>Recipe</th><th>Patients</th>'
            "<th>Headline (patient level)</th><th>Split</th></tr></thead><tbody>",
            *rows,
            "</tbody></table>",
            '<button type="submit" id="compare-button">Compare selected runs</button></form>',
        ],
        "/",
    )


def run_page(s: dict, files: list[str]) -> str:
    body = [
        f'<p class="crumbs"><a href="/">Runs</a> / {esc(s["id"])}</p>',
        f"<h1>{esc(s['id'])}</h1>",
        '<dl class="facts">',
        *[
            f"<dt>{esc(k)}</dt><dd>{v}</dd>"
            for k, v in (
                ("Kind", esc(s["kind"])),
                ("Title", esc(s["title"])),
                ("Description", esc(s["description"])),
                ("Task", esc(s["task"] or "–")),
                ("Recipe", f"<code>{esc(s['recipe'])}</code>"),
                ("Classes", esc(", ".join(s["classes"]))),
                ("Patients", esc(s["patients"] if s["patients"] is not None else "–")),
                ("Headline", headline_text(s["headline"])),
            )
        ],
        "</dl>",
        f'<div class="statement">{esc(s["split_statement"] or "No split statement.")}</div>',
    ]
    if s["notes"]:
        body.append(
            "<details><summary>Notes ("
            + str(len(s["notes"]))
            + ")</summary><ul>"
            + "".join(f"<li>{esc(n)}</li>" for n in s["notes"])
            + "</ul></details>"
        )
    actions = []
    if s["applicable"]:
        actions.append(f'<a class="button" href="/predict?{esc(urlencode({"model": s["id"]}))}">Apply to a study</a>')
    actions += [f'<a href="/run/file?{esc(urlencode({"id": s["id"], "name": f}))}">{esc(f)}</a>' for f in files]
    body.append('<p class="files">' + " · ".join(actions) + "</p>")
    if s["has_report"]:
        src = "/run/file?" + urlencode({"id": s["id"], "name": REPORT})
        body.append(f'<iframe class="report" title="report of {esc(s["id"])}" src="{esc(src)}"></iframe>')
    else:
        body.append(
            f'<p class="empty">This run has no {REPORT} (trained with --no-report? '
            "<code>glioscope evaluate RUN</code> writes it).</p>"
        )
    return layout(s["id"], body, "/")


def compare_page(ids: list[str], error: str | None) -> str:
    body = ['<p class="crumbs"><a href="/">Runs</a> / comparison</p>', f"<h1>Comparison: {esc(', '.join(ids))}</h1>"]
    if error:
        body.append(f'<div class="error" role="alert"><b>Not compared.</b> {esc(error)}</div>')
        return layout("Comparison", body, "/")
    src = "/compare/view?" + urlencode([("run", i) for i in ids])
    body.append(f'<iframe class="report" title="comparison" src="{esc(src)}"></iframe>')
    return layout("Comparison", body, "/")


def predict_form(choices: list[dict], selected: str | None, limits_text: str) -> str:
    options = "".join(
        f'<option value="{esc(c["id"])}"{" selected" if c["id"] == selected else ""}>{esc(c["id"])} — {esc(c["title"])}, '
        f"{esc(c['samples'] or '?')}{' (package)' if c['kind'] == 'package' else ''}</option>"
        for c in choices
    )
    if not choices:
        return layout(
            "Predict",
            [
                "<h1>Predict</h1>",
                '<p class="empty">No run with trained fold models here: train one '
                "(<code>glioscope cv</code>) or export a package.</p>",
            ],
            "/predict",
        )
    return layout(
        "Predict",
        [
            "<h1>Apply a model to a study</h1>",
            '<form method="post" action="/predict" enctype="multipart/form-data" id="predict-form" class="card">',
            f'<label>Run or model package <select name="model" id="model">{options}</select></label>',
            '<label>Study <input type="file" name="files" id="files" multiple required></label>',
            '<p class="hint">DICOM files of one series or study (choose them all), a zip of a series, a NIfTI volume '
            "(.nii, .nii.gz) or a 2D image (PNG, JPEG, TIFF). " + esc(limits_text) + "</p>",
            '<label>Tumour mask, optional <input type="file" name="mask" id="mask"></label>',
            '<p class="hint">Only for recipes that crop to the tumour or pick slices by it.</p>',
            '<button type="submit" id="predict-button">Predict</button> <span id="busy" hidden>Predicting…</span>',
            "</form>",
            '<p class="muted">The upload is written to a temporary folder, predicted by every fold model, and deleted. '
            "The probabilities are those <code>glioscope predict</code> gives for the same files.</p>",
        ],
        "/predict",
    )


def _probability_table(result: dict) -> str:
    patient = result["patients"][0]
    folds = list(patient["folds"])
    head = "<th>Class</th><th>Ensemble</th>" + "".join(f"<th>{esc(f)}</th>" for f in folds)
    rows = []
    for name in result["classes"]:
        p = patient["probabilities"][name]
        cells = [
            f'<td class="prob ensemble{" top" if name == patient["prediction"] else ""}" data-class="{esc(name)}" '
            f'data-fold="ensemble" data-prob="{p!r}"><span class="bar" style="--p:{p:.4f}"></span>{p:.4f}</td>'
        ]
        for fold in folds:
            q = patient["folds"][fold]["probabilities"][name]
            cells.append(
                f'<td class="prob" data-class="{esc(name)}" data-fold="{esc(fold)}" data-prob="{q!r}">{q:.4f}</td>'
            )
        rows.append(f'<tr><td class="label">{esc(name)}</td>{"".join(cells)}</tr>')
    verdict = "".join(f"<th>{esc(patient['folds'][f]['prediction'])}</th>" for f in folds)
    return (
        f'<table class="probs" id="probabilities"><caption>Patient {esc(patient["patient_id"])}: '
        f"{patient['n_samples']} sample(s); {esc(result['models'])}</caption><thead><tr>{head}</tr></thead>"
        f'<tbody>{"".join(rows)}</tbody><tfoot><tr><th>most probable</th><th id="prediction">'
        f"{esc(patient['prediction'])}</th>{verdict}</tr></tfoot></table>"
    )


def _inputs_table(result: dict) -> str:
    rows = []
    for item in result["inputs"]:
        if item["status"] == "predicted":
            what = f"{item['n_samples']} sample(s) → {esc(item['prediction'])}"
        else:
            what = f'<span class="skip">not used: {esc(item["reason"])}</span>'
        rows.append(f'<tr><td class="label">{esc(item["path"])}</td><td>{esc(item["status"])}</td><td>{what}</td></tr>')
    return (
        '<table class="inputs"><caption>Every series, volume or image found in the upload</caption>'
        "<thead><tr><th>Input</th><th>Status</th><th>Result</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def _samples_text(result: dict) -> str:
    samples = result.get(result["samples_kind"], [])
    if result["samples_kind"] == "slices":
        return f"{len(samples)} slice(s) used (slice {esc(_ranges([s.get('slice_index') for s in samples]))})"
    if result["samples_kind"] == "radiomics":
        return f"PyRadiomics features of {len(samples)} patient(s), inside the tumour mask"
    return f"{len(samples)} volume(s) used ({esc(', '.join(str(s.get('sequences', '')) for s in samples))})"


def _ranges(values: list) -> str:
    """'0–4, 7, 9–10' of integers in their order (anything else joined as it is)."""
    if not all(isinstance(v, int) for v in values):
        return ", ".join(map(str, values[:40])) + (" …" if len(values) > 40 else "")
    runs: list[list[int]] = []
    for v in values:
        if runs and v == runs[-1][-1] + 1:
            runs[-1].append(v)
        else:
            runs.append([v])
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}–{r[-1]}" for r in runs)


def _attended(patient: dict) -> str:
    """An attention model's most attended slices of the patient: thumbnails, slice index and weight."""
    figures = []
    for a in patient["attention"]:
        where = f"slice #{a['slice_index']}" if a.get("slice_index") is not None else a.get("slice_id", "")
        text = f"{where} · {a['attention']:.3f}"
        picture = f'<img src="{esc(a["thumbnail"])}" alt="{esc(where)}" width="128">' if a.get("thumbnail") else ""
        figures.append(
            f'<figure class="attended" data-slice="{esc(a.get("slice_index"))}" data-attention="{a["attention"]!r}" '
            f'title="{esc(a.get("source_path", ""))}">{picture}<figcaption>{esc(text)}</figcaption></figure>'
        )
    return (
        '<section class="viewer-panel" id="attention"><h2>Slices that decided</h2><p class="muted">The slices the '
        "model's attention weighed most (mean over the fold models); a patient's weights sum to 1 over all its "
        "slices. Attention says where the model looked, not why.</p>"
        f'<div class="attended-slices">{"".join(figures)}</div></section>'
    )


def _unlike(patient: dict) -> str:
    """A warning banner beside the verdict when the patient is unlike the run's training data (a muted line when
    nothing can tell); nothing when it is like it."""
    line = warning_line(patient)
    if line is None:
        return ""
    flagged = bool((patient.get("unlike_training") or {}).get("warning"))
    return f'<div class="{"banner warning" if flagged else "muted"}" id="unlike-training">{esc(line)}</div>'


def result_page(result: dict) -> str:
    patient = result["patients"][0]
    reasons = sorted({r for p in result["patients"] if p["seen_in_training"] for r in p.get("seen_because", [])})
    seen = (
        '<div class="banner warning" id="seen">Seen in training: '
        + esc("; ".join(reasons) or "this patient is in the run's own cohort")
        + ", so this is not an independent test.</div>"
        if any(p["seen_in_training"] for p in result["patients"])
        else ""
    )
    more = (
        ""
        if len(result["patients"]) == 1
        else (
            f'<p class="muted">{len(result["patients"])} patients in this upload; the first is shown. '
            + esc(", ".join(f"{p['patient_id']}: {p['prediction']}" for p in result["patients"]))
            + "</p>"
        )
    )
    notes = [_samples_text(result), *map(esc, result["notes"])]
    niivue_missing = missing() if (result["viewer"] or {}).get("study") else None
    images = (
        study_panel(result["viewer"], niivue_missing, _attended(patient) if patient.get("attention") else "")
        if result["viewer"]
        else _attended(patient)
        if patient.get("attention")
        else '<section class="viewer-panel"><h2>Images</h2><p class="muted">This model reads features computed '
        "inside the tumour mask, not an image: there is nothing to show.</p></section>"
    )
    body = [
        '<p class="crumbs"><a href="/predict">Predict</a> / result</p>',
        verdict_html(result),  # the set, the folds' spread and the run's CV figure: never a lone class
        f'<p class="meta"><b>Model:</b> {esc(result["run"])}: {esc(result["title"])} · '
        f'<b>Upload:</b> {esc(result["input"])} · <b>Time:</b> <span id="timing">{result["timing"]["total_s"]:.2f} s</span></p>',
        seen,
        _unlike(patient),
        more,
        '<div class="result">',
        images,
        '<section class="numbers"><h2>Probabilities</h2>',
        _probability_table(result),
        '<h2>Notes</h2><ul id="notes">' + "".join(f"<li>{n}</li>" for n in notes) + "</ul>",
        _inputs_table(result),
        "</section></div>",
    ]
    niivue = (result["viewer"] or {}).get("study") and niivue_missing is None
    return layout(
        "Prediction", body, "/predict", scripts=("viewer.js",), modules=("study_viewer.js",) if niivue else ()
    )


def error_page(status: int, message: str, back: str = "/") -> str:
    titles = {
        400: "Bad upload",
        403: "Not allowed",
        404: "Not found",
        413: "Too large",
        422: "Cannot use this input",
        500: "Something failed",
    }
    return layout(
        titles.get(status, "Error"),
        [
            f"<h1>{esc(titles.get(status, 'Error'))}</h1>",
            f'<div class="error" role="alert" id="error">{esc(message)}</div>',
            f'<p><a href="{esc(back)}">Back</a></p>',
        ],
    )


def token_page(message: str) -> str:
    """What a request without this launch's token gets: how to open the app."""
    return layout(
        "Open glioscope through its address",
        [
            "<h1>Open glioscope through its address</h1>",
            f'<div class="error" role="alert" id="error">{esc(message)}</div>',
            "<p>The address holds a token made when <code>glioscope serve</code> started, so that only someone "
            "who saw it, not another web page, can use the app.</p>",
        ],
    )
