// glioscope serve: small page behaviour (the pages work without it), and the helpers both viewers build their
// controls with (window.glioscopeUi: viewer.js, the canvas viewer, and study_viewer.js, NiiVue's page).
window.glioscopeUi = (() => {
  function el(tag, attrs = {}, children = []) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "text") node.textContent = v; else node.setAttribute(k, v);
    }
    for (const child of children) node.appendChild(child);
    return node;
  }
  // A labelled range input and its read-out, with ids `${prefix}-${name}` and `${prefix}-${name}-value`.
  function slider(prefix, name, label, min, max, step, value) {
    const input = el("input", { type: "range", min, max, step, value, id: `${prefix}-${name}`, name });
    const out = el("output", { for: `${prefix}-${name}`, id: `${prefix}-${name}-value` });
    return { input, out, wrap: el("label", { class: "control" }, [el("span", { text: label }), input, out]) };
  }
  return { el, slider };
})();

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("predict-form");
  if (form) {
    form.addEventListener("submit", () => {
      const button = document.getElementById("predict-button");
      if (button) button.disabled = true;
      const busy = document.getElementById("busy");
      if (busy) busy.hidden = false;
    });
  }
  const compare = document.getElementById("compare-form");
  if (compare) {
    const button = document.getElementById("compare-button");
    const update = () => {
      const n = compare.querySelectorAll("input[name=run]:checked").length;
      button.textContent = n ? `Compare ${n} selected run${n === 1 ? "" : "s"}` : "Compare selected runs";
    };
    compare.addEventListener("change", update);
    update();
  }
});
