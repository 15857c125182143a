// Compare page: the same books and seeds through several runs, checkpoints or base models,
// side by side (rows: book and seed; columns: models), filled in as each image finishes.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const { api, el, flash, guard, fileUrl } = Studio;
  let pickBooks = () => [];
  let currentJob = null;

  function modelChoices(data) {
    const out = [];
    for (const r of data.runs) {
      if (r.finished) out.push({ kind: "run", path: r.path, label: `${r.path} (final)` });
      for (const c of r.checkpoints) out.push({ kind: "checkpoint", path: c.path, label: `${r.path} @ step ${c.step}` });
    }
    for (const m of data.models) out.push({ kind: "model", path: m, label: `${m} (base)` });
    return out;
  }

  function header(models) {
    const head = el("tr", {}, el("th", { text: "Book" }), el("th", { text: "Seed" }), ...models.map((m) => el("th", { text: m.label })));
    $("cmp-table").replaceChildren(el("thead", {}, head), el("tbody"));
  }

  // The row of a (book, seed), made when its first image arrives, with a placeholder per model.
  function cell(models, r) {
    const id = (v) => `cell-${v}-${r.book}-${r.seed}`;
    if (!document.getElementById(id(r.variant))) {
      $("cmp-table").querySelector("tbody").append(el("tr", {}, el("td", { class: "book", text: r.title }), el("td", { text: String(r.seed) }),
        ...models.map((_, v) => el("td", { id: id(v) }, el("div", { class: "pending" })))));
    }
    return document.getElementById(id(r.variant));
  }

  async function compare(event) {
    event.preventDefault();
    flash("");
    const models = [...document.querySelectorAll("#cmp-models input:checked")].map((box) => JSON.parse(box.value));
    if (!models.length) { flash("tick at least one model to compare"); return; }
    const books = pickBooks();
    const job = await guard(() => api("POST", "/api/compare", {
      models: models.map(({ kind, path }) => ({ kind, path })), source: $("book-source").value, books,
      seeds: $("seeds").value, steps: Number($("steps").value), guidance: Number($("guidance").value),
      sampler: $("sampler").value, aspect: $("aspect").value,
    }));
    if (!job) return;
    currentJob = job.id;
    header(models);
    $("compare-btn").disabled = true;
    $("cmp-stop").hidden = false;
    let shown = 0;
    const done = await guard(() => Studio.follow(job.id, (j) => {
      for (const r of j.results.slice(shown)) {
        cell(models, r).replaceChildren(el("a", { href: fileUrl(r.path), target: "_blank", rel: "noopener" },
          el("img", { src: fileUrl(r.path), alt: `${r.title}, ${r.model}, seed ${r.seed}` })));
      }
      shown = j.results.length;
      $("cmp-bar").style.width = `${j.total ? (100 * j.done) / j.total : 0}%`;
      $("cmp-status").textContent = `${j.status}: ${j.done} of ${j.total} images`;
    }));
    $("compare-btn").disabled = false;
    $("cmp-stop").hidden = true;
    if (done && done.status === "failed") flash(done.message);
  }

  document.addEventListener("DOMContentLoaded", async () => {
    $("cmp-form").addEventListener("submit", compare);
    $("cmp-stop").addEventListener("click", () => currentJob && guard(() => api("POST", `/api/jobs/${currentJob}/stop`)));
    const data = await guard(() => api("GET", "/api/models"));
    const choices = data ? modelChoices(data) : [];
    $("cmp-models").replaceChildren(...(choices.length ? choices.map((m, i) => el("label", {},
      el("input", { type: "checkbox", value: JSON.stringify(m), checked: i < 3 }), m.label))
      : [el("p", { class: "muted", text: "No runs or models in the workspace yet." })]));
    // The list is read with the first ticked run's prompt recipe; each model then gets its own prompts.
    const run = () => {
      const ticked = [...$("cmp-models").querySelectorAll("input:checked")].map((box) => JSON.parse(box.value));
      const first = ticked.find((m) => m.kind === "run" || m.kind === "checkpoint");
      return first ? first.path : "";
    };
    const picker = await guard(() => Studio.bookPicker({ source: $("book-source"), search: $("book-search"), list: $("book-list"), multiple: true, max: 8,
                                                          run, note: $("book-prompts") }));
    if (picker) pickBooks = picker[0];
    const first = document.querySelector("#book-list input");
    if (first) first.checked = true;
  });
})();
