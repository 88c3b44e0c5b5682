// glioscope's slice viewer: the model's input with its Grad-CAM, drawn on canvases (no WebGL, no network but the app).
// A volume shows three planes (axial, coronal, sagittal) through a crosshair; a stack of 2D slices shows one plane.
// Window and level (sliders, or drag on an image), zoom, the slice (slider or wheel), Grad-CAM opacity.
(() => {
  "use strict";
  const SIZE = 300; // CSS pixels of a plane's canvas

  function jet(t) { // matplotlib's jet, piecewise linear
    const c = (x) => Math.max(0, Math.min(1, x));
    return [c(1.5 - Math.abs(4 * t - 3)), c(1.5 - Math.abs(4 * t - 2)), c(1.5 - Math.abs(4 * t - 1))];
  }
  const JET = Array.from({ length: 256 }, (_, i) => jet(i / 255).map((v) => v * 255));

  const el = window.glioscopeUi.el;
  const slider = (...args) => window.glioscopeUi.slider("viewer", ...args);

  function planes(meta) {
    if (meta.layout === "volume") {
      const [D, H, W] = meta.shape;
      return [ // D: inferior to superior, H: anterior to posterior, W: right to left (radiological display)
        { name: "axial", rows: H, cols: W, count: D, axis: 0, at: (i, r, c) => (i * H + r) * W + c },
        { name: "coronal", rows: D, cols: W, count: H, axis: 1, at: (i, r, c) => ((D - 1 - r) * H + i) * W + c },
        { name: "sagittal", rows: D, cols: H, count: W, axis: 2, at: (i, r, c) => ((D - 1 - r) * H + c) * W + i },
      ];
    }
    const [N, H, W] = meta.shape;
    return [{ name: "slice", rows: H, cols: W, count: N, axis: 0, at: (i, r, c) => (i * H + r) * W + c }];
  }

  async function start(root, meta) {
    const get = async (part) => new Uint8Array(await (await fetch(`/api/viewer/${meta.token}/${part}`)).arrayBuffer());
    const image = await get("image");
    const cam = meta.cam ? await get("cam") : null;
    const voxels = meta.shape.reduce((a, b) => a * b, 1);
    const views = planes(meta);
    const state = { channel: 0, window: 255, level: 127.5, opacity: 0.45, overlay: !!cam, zoom: 1,
                    pos: meta.layout === "volume" ? meta.shape.map((n) => Math.floor(n / 2)) : [Math.floor(meta.shape[0] / 2)] };
    if (cam && meta.layout === "volume") { // start at the map's maximum inside the head (not in the background)
      let best = -1;
      for (let k = 0; k < voxels; k++) if (image[k] > 25 && (best < 0 || cam[k] > cam[best])) best = k;
      best = Math.max(best, 0);
      const [, H, W] = meta.shape;
      state.pos = [Math.floor(best / (H * W)), Math.floor(best / W) % H, best % W];
    }
    const controls = el("div", { class: "viewer-controls" });
    const grid = el("div", { class: `viewer-planes ${meta.layout}` });
    root.append(controls, grid);
    const range = () => meta.ranges[state.channel] || [0, 255]; // the channel's values before scaling to 0..255
    const w = slider("window", "Window", 1, 255, 1, state.window);
    const l = slider("level", "Level", 0, 255, 0.5, state.level);
    const z = slider("zoom", "Zoom", 1, 8, 0.25, state.zoom);
    const o = slider("opacity", "Grad-CAM opacity", 0, 1, 0.05, state.opacity);
    const show = el("input", { type: "checkbox", id: "viewer-overlay" });
    show.checked = state.overlay;
    const reset = el("button", { type: "button", id: "viewer-reset", text: "Reset" });
    controls.append(w.wrap, l.wrap, z.wrap);
    if (meta.channels.length > 1) {
      const select = el("select", { id: "viewer-channel" }, meta.channels.map((name, k) => el("option", { value: k, text: name })));
      select.addEventListener("change", () => { state.channel = Number(select.value); draw(); });
      controls.append(el("label", { class: "control" }, [el("span", { text: "Channel" }), select]));
    }
    if (cam) {
      controls.append(o.wrap, el("label", { class: "control check" }, [show, el("span", { text: `Grad-CAM of ${meta.cam_class}` })]));
    } else {
      controls.append(el("p", { class: "muted", text: "No Grad-CAM for this study." }));
    }
    controls.append(reset);

    const panes = views.map((view) => {
      const canvas = el("canvas", { class: "plane", "data-plane": view.name, width: SIZE * devicePixelRatio, height: SIZE * devicePixelRatio });
      const index = slider(`${view.name}-index`, view.name, 0, view.count - 1, 1, state.pos[view.axis]);
      const caption = el("div", { class: "plane-caption" }, [index.wrap]);
      grid.append(el("figure", { class: "pane" }, [canvas, caption]));
      index.input.addEventListener("input", () => { state.pos[view.axis] = Number(index.input.value); draw(); });
      const offscreen = document.createElement("canvas");
      offscreen.width = view.cols; offscreen.height = view.rows;
      return { view, canvas, index, offscreen };
    });

    function value(v) { const [a, b] = range(); return (a + (v / 255) * (b - a)).toPrecision(3); }

    function renderPane(pane) {
      const { view, canvas, offscreen } = pane;
      const i = state.pos[view.axis];
      const pixels = new ImageData(view.cols, view.rows);
      const base = state.channel * voxels, low = state.level - state.window / 2;
      for (let r = 0; r < view.rows; r++) {
        for (let c = 0; c < view.cols; c++) {
          const k = view.at(i, r, c);
          let g = Math.max(0, Math.min(255, ((image[base + k] - low) / state.window) * 255));
          let rgb = [g, g, g];
          if (cam && state.overlay) {
            const a = state.opacity * (cam[k] / 255), colour = JET[cam[k]];
            rgb = rgb.map((x, j) => (1 - a) * x + a * colour[j]);
          }
          const p = (r * view.cols + c) * 4;
          pixels.data[p] = rgb[0]; pixels.data[p + 1] = rgb[1]; pixels.data[p + 2] = rgb[2]; pixels.data[p + 3] = 255;
        }
      }
      offscreen.getContext("2d").putImageData(pixels, 0, 0);
      const ctx = canvas.getContext("2d");
      ctx.imageSmoothingEnabled = false;
      ctx.fillStyle = "#000"; ctx.fillRect(0, 0, canvas.width, canvas.height);
      const scale = Math.min(canvas.width / view.cols, canvas.height / view.rows) * state.zoom;
      const cross = crosshair(view); // image coordinates of the crosshair (the centre for a stack)
      const cx = state.zoom > 1 ? cross[1] + 0.5 : view.cols / 2, cy = state.zoom > 1 ? cross[0] + 0.5 : view.rows / 2;
      const x0 = canvas.width / 2 - cx * scale, y0 = canvas.height / 2 - cy * scale;
      ctx.drawImage(offscreen, x0, y0, view.cols * scale, view.rows * scale);
      pane.transform = { x0, y0, scale };
      if (meta.layout === "volume") {
        ctx.strokeStyle = "rgba(255, 214, 10, 0.55)"; ctx.lineWidth = devicePixelRatio;
        ctx.beginPath();
        ctx.moveTo(0, y0 + (cross[0] + 0.5) * scale); ctx.lineTo(canvas.width, y0 + (cross[0] + 0.5) * scale);
        ctx.moveTo(x0 + (cross[1] + 0.5) * scale, 0); ctx.lineTo(x0 + (cross[1] + 0.5) * scale, canvas.height);
        ctx.stroke();
      }
      pane.index.input.value = i;
      pane.index.out.textContent = `${i + 1} / ${view.count}` + (meta.labels.length ? ` (slice ${meta.labels[i]})` : "");
    }

    function crosshair(view) { // [row, col] of the other two axes' positions in this plane
      if (meta.layout !== "volume") return [view.rows / 2, view.cols / 2];
      const [d, h, wv] = state.pos, D = meta.shape[0];
      if (view.name === "axial") return [h, wv];
      if (view.name === "coronal") return [D - 1 - d, wv];
      return [D - 1 - d, h];
    }

    function draw() {
      w.input.value = state.window; l.input.value = state.level; z.input.value = state.zoom; o.input.value = state.opacity;
      w.out.textContent = ((state.window / 255) * (range()[1] - range()[0])).toPrecision(3);
      l.out.textContent = value(state.level);
      z.out.textContent = `${state.zoom}×`;
      o.out.textContent = `${Math.round(state.opacity * 100)}%`;
      panes.forEach(renderPane);
      root.dataset.ready = String(Number(root.dataset.ready || 0) + 1); // for tests: how many times it was drawn
    }

    w.input.addEventListener("input", () => { state.window = Number(w.input.value); draw(); });
    l.input.addEventListener("input", () => { state.level = Number(l.input.value); draw(); });
    z.input.addEventListener("input", () => { state.zoom = Number(z.input.value); draw(); });
    o.input.addEventListener("input", () => { state.opacity = Number(o.input.value); draw(); });
    show.addEventListener("change", () => { state.overlay = show.checked; draw(); });
    reset.addEventListener("click", () => { Object.assign(state, { window: 255, level: 127.5, zoom: 1 }); draw(); });

    for (const pane of panes) {
      let drag = null;
      pane.canvas.addEventListener("pointerdown", (e) => { drag = { x: e.clientX, y: e.clientY, w: state.window, l: state.level, moved: false }; pane.canvas.setPointerCapture(e.pointerId); });
      pane.canvas.addEventListener("pointermove", (e) => {
        if (!drag) return;
        const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
        if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
        if (!drag.moved) return;
        state.window = Math.max(1, Math.min(255, drag.w + dx));
        state.level = Math.max(0, Math.min(255, drag.l - dy));
        draw();
      });
      pane.canvas.addEventListener("pointerup", (e) => {
        if (drag && !drag.moved && meta.layout === "volume") { // a click moves the crosshair there
          const rect = pane.canvas.getBoundingClientRect(), t = pane.transform;
          const px = ((e.clientX - rect.left) * pane.canvas.width) / rect.width, py = ((e.clientY - rect.top) * pane.canvas.height) / rect.height;
          const c = Math.floor((px - t.x0) / t.scale), r = Math.floor((py - t.y0) / t.scale);
          const { view } = pane, D = meta.shape[0];
          if (r >= 0 && c >= 0 && r < view.rows && c < view.cols) {
            if (view.name === "axial") { state.pos[1] = r; state.pos[2] = c; }
            if (view.name === "coronal") { state.pos[0] = D - 1 - r; state.pos[2] = c; }
            if (view.name === "sagittal") { state.pos[0] = D - 1 - r; state.pos[1] = c; }
            draw();
          }
        }
        drag = null;
      });
      pane.canvas.addEventListener("wheel", (e) => {
        e.preventDefault();
        const { view } = pane;
        state.pos[view.axis] = Math.max(0, Math.min(view.count - 1, state.pos[view.axis] + (e.deltaY > 0 ? 1 : -1)));
        draw();
      }, { passive: false });
    }
    draw();
    window.glioscopeViewer = { state, draw, meta };
  }

  function webgl2() {
    try { return !!document.createElement("canvas").getContext("webgl2"); } catch (error) { return false; }
  }

  // The canvas viewer over the model's input: the page's viewer, or NiiVue's fall-back (static/study_viewer.js).
  window.glioscopeCanvas = (why) => {
    const root = document.getElementById("viewer"), metaEl = document.getElementById("viewer-meta");
    const meta = JSON.parse(metaEl.textContent);
    if (why) root.before(el("p", { class: "muted", id: "canvas-why", text: why }));
    root.dataset.viewer = "canvas";
    if (!meta.layout) return; // a model whose input is no image: nothing to draw here
    start(root, meta).catch((error) => {
      root.textContent = `The images could not be shown: ${error}`;
      root.dataset.error = String(error);
    });
  };

  document.addEventListener("DOMContentLoaded", () => {
    const root = document.getElementById("viewer"), metaEl = document.getElementById("viewer-meta");
    if (!root || !metaEl) return;
    if (root.dataset.niivue !== "1") { window.glioscopeCanvas(); return; }
    if (!webgl2()) {
      window.glioscopeCanvas("This browser has no WebGL 2, which NiiVue needs: the model's input, after preprocessing, is shown instead.");
    } else if (!window.glioscopeNiivueLoaded) { // its module (static/study_viewer.js) did not load
      window.glioscopeCanvas("NiiVue could not be loaded: the model's input, after preprocessing, is shown instead.");
    }
  });
})();
