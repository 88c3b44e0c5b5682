// glioscope serve: small page behaviour (the pages work without it).
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
