// The uploaded study at its own resolution in NiiVue (fetched by `make viewer`, served by the app, never a CDN),
// with the Grad-CAM resampled onto its grid as a colour overlay: three planes and a 3D render for a volume, the
// image at full size for a 2D input. Without WebGL 2, or when NiiVue fails, static/viewer.js's canvas viewer shows
// the model's input instead.
import { DRAG_MODE, MULTIPLANAR_TYPE, Niivue, SHOW_RENDER, SLICE_TYPE } from "./vendor/niivue/niivue.js";

window.glioscopeNiivueLoaded = true;

const root = document.getElementById("viewer");
const metaEl = document.getElementById("viewer-meta");

function webgl2() {
  try { return !!document.createElement("canvas").getContext("webgl2"); } catch (error) { return false; }
}

const el = window.glioscopeUi.el; // app.js, which runs before this module
const slider = (...args) => window.glioscopeUi.slider("niivue", ...args);

// NiiVue's voxel coordinates (frac2vox, vox2frac, the location's vox) run in RAS order; the study's own voxels (the
// focus, the ranked slices, what the page shows) go through the file's affine and millimetres instead.
function voxelToMm(affine, v) {
  return [0, 1, 2].map((r) => affine[r][0] * v[0] + affine[r][1] * v[1] + affine[r][2] * v[2] + affine[r][3]);
}

function mmToVoxel(affine, mm) {
  const m = [0, 1, 2].map((r) => [affine[r][0], affine[r][1], affine[r][2]]), d = [0, 1, 2].map((r) => mm[r] - affine[r][3]);
  const det = (a) => a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0])
    + a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]);
  const whole = det(m); // Cramer's rule: the affine's 3x3 part is small and well conditioned
  return [0, 1, 2].map((c) => Math.round(det(m.map((row, r) => row.map((x, k) => (k === c ? d[r] : x)))) / whole));
}

const round = (v) => (Math.abs(v) >= 100 ? v.toFixed(0) : Number(v).toPrecision(3));

async function start(meta) {
  const study = meta.study, volume = study.kind === "volume";
  const canvas = el("canvas", { id: "niivue-canvas", class: volume ? "niivue volume" : "niivue image" });
  const controls = el("div", { class: "viewer-controls" });
  const location = el("p", { class: "niivue-location", id: "niivue-location", text: " " });
  root.append(controls, el("div", { class: volume ? "niivue-frame" : "niivue-frame image" }, [canvas]), location);
  const nv = new Niivue({
    backColor: [0, 0, 0, 1],
    crosshairColor: [1, 0.84, 0.04, 0.6],
    crosshairWidth: 0.5,
    show3Dcrosshair: true,
    isColorbar: study.cam,
    isOrientationTextVisible: volume, // a 2D picture has no left or right
    multiplanarShowRender: SHOW_RENDER.ALWAYS,
    multiplanarLayout: MULTIPLANAR_TYPE.GRID, // axial, coronal, sagittal and the 3D render, two by two
    dragMode: DRAG_MODE.contrast,
    loadingText: "loading the study...",
  });
  window.glioscopeNiivue = nv; // for tests and the console
  await nv.attachToCanvas(canvas);
  const gl = nv.gl;
  if (!gl || gl.isContextLost()) throw new Error("the WebGL 2 context was lost");
  const url = (part) => `/api/viewer/${encodeURIComponent(meta.token)}/${part}`;
  // The one colour bar is the map's: the study's grey bar is hidden from the start.
  const volumes = [{ url: url("study.nii.gz"), name: "study.nii.gz", colormap: "gray", colorbarVisible: false }];
  const colormap = nv.colormaps().includes("jet") ? "jet" : "warm";
  if (study.cam) {
    volumes.push({ url: url("cam.nii.gz"), name: "cam.nii.gz", colormap, opacity: 0.45, cal_min: 0.2, cal_max: 1 });
  }
  await nv.loadVolumes(volumes);
  const [image, cam] = nv.volumes;
  image.colorbarVisible = false;
  nv.setSliceType(volume ? SLICE_TYPE.MULTIPLANAR : SLICE_TYPE.AXIAL);
  const affine = image.hdr.affine;
  const moveTo = (voxel) => { nv.scene.crosshairPos = nv.mm2frac(voxelToMm(affine, voxel)); };
  const [top] = study.ranked_slices;
  if (study.focus_voxel) moveTo(study.focus_voxel);
  else if (top) { // an attention model without a map: its most attended slice, through the middle of the others
    const middle = study.shape.map((n) => Math.floor(n / 2));
    middle[top.axis ?? 2] = top.slice;
    moveTo(middle);
  }

  // Window and level of the study, in its own units (the file's values).
  const low = image.global_min ?? image.cal_min, high = image.global_max ?? image.cal_max;
  const span = Math.max(high - low, 1e-6), step = span / 500;
  const window0 = image.cal_max - image.cal_min, level0 = (image.cal_max + image.cal_min) / 2;
  const w = slider("window", "Window", step, span, step, window0);
  const l = slider("level", "Level", low, high, step, level0);
  const z = slider("zoom", "Zoom", 1, 8, 0.25, 1);
  const o = slider("opacity", "Grad-CAM opacity", 0, 1, 0.05, 0.45);
  const drag = el("select", { id: "niivue-drag" }, [
    el("option", { value: "contrast", text: "window and level" }),
    el("option", { value: "pan", text: "pan and zoom" }),
  ]);
  const reset = el("button", { type: "button", id: "niivue-reset", text: "Reset" });
  controls.append(w.wrap, l.wrap, z.wrap, el("label", { class: "control" }, [el("span", { text: "Right-drag" }), drag]));
  if (cam) controls.append(o.wrap, el("span", { class: "muted", text: `Grad-CAM of ${study.cam_class} (0 to 1)` }));
  else controls.append(el("p", { class: "muted", text: "No Grad-CAM for this study." }));
  controls.append(reset);

  // Each control redraws only when moved: a volume's every update costs a full pass over its voxels.
  function shown() {
    w.out.textContent = round(Number(w.input.value));
    l.out.textContent = round(Number(l.input.value));
    z.out.textContent = `${z.input.value}×`;
    o.out.textContent = `${Math.round(Number(o.input.value) * 100)}%`;
  }
  function contrast() {
    const width = Number(w.input.value), centre = Number(l.input.value);
    image.cal_min = centre - width / 2;
    image.cal_max = centre + width / 2;
    shown();
    nv.updateGLVolume();
  }
  function zoom() {
    const pan = nv.scene.pan2Dxyzmm;
    nv.setPan2Dxyzmm([pan[0], pan[1], pan[2], Number(z.input.value)]);
    shown();
  }
  function opacity() {
    if (cam) nv.setOpacity(1, Number(o.input.value));
    shown();
  }
  w.input.addEventListener("input", contrast);
  l.input.addEventListener("input", contrast);
  z.input.addEventListener("input", zoom);
  o.input.addEventListener("input", opacity);
  drag.addEventListener("change", () => { nv.opts.dragMode = DRAG_MODE[drag.value]; });
  reset.addEventListener("click", () => {
    w.input.value = window0; l.input.value = level0; z.input.value = 1;
    nv.setPan2Dxyzmm([0, 0, 0, 1]);
    contrast(); zoom();
  });
  nv.onIntensityChange = () => { // right-drag changed the window: the sliders follow
    w.input.value = image.cal_max - image.cal_min; l.input.value = (image.cal_max + image.cal_min) / 2;
    w.out.textContent = round(Number(w.input.value)); l.out.textContent = round(Number(l.input.value));
  };
  nv.onLocationChange = (data) => { // the crosshair in mm (the study's world space) and the values under it
    const mm = Array.from(data.mm).slice(0, 3);
    const vox = mmToVoxel(affine, mm).slice(0, volume ? 3 : 2).join(", ");
    const values = data.values || [];
    const value = values[0] ? round(values[0].value) : "–";
    const map = values[1] ? `; Grad-CAM ${values[1].value.toFixed(2)}` : "";
    const what = study.sequence && study.sequence !== "unknown" ? study.sequence : "intensity";
    const at = mm.map((v) => v.toFixed(1)).join(", ");
    const where = volume ? `voxel ${vox} · ${at} mm` : `pixel ${vox}`; // a 2D picture's pixels have no size here
    location.textContent = `${where} · ${what} ${value}${map}`;
    location.dataset.voxel = vox;
  };
  for (const button of document.querySelectorAll("button.ranked-slice")) { // an attention model's slices
    button.addEventListener("click", () => {
      const at = mmToVoxel(affine, nv.frac2mm(nv.scene.crosshairPos));
      at[Number(button.dataset.axis)] = Number(button.dataset.slice); // its index along that axis of the study
      moveTo(at);
      nv.createOnLocationChange();
      nv.drawScene();
    });
  }
  shown();
  nv.createOnLocationChange();
  nv.drawScene();
  if (gl.isContextLost()) throw new Error("the WebGL 2 context was lost while drawing");
  root.dataset.viewer = "niivue";
  root.dataset.niivueReady = String(Math.round(performance.now())); // for tests: ms from the page's start to drawn
}

if (root && metaEl && root.dataset.niivue === "1" && webgl2()) {
  start(JSON.parse(metaEl.textContent)).catch((error) => {
    root.replaceChildren();
    root.dataset.niivueError = String(error);
    window.glioscopeCanvas?.(`NiiVue could not show the study (${error}): the model's input is shown instead.`);
  });
}
