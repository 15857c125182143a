// Generate page: a model, books (from a list or typed), sampling settings; candidates appear
// as they finish, each with its seed, and go on to the Cover page with one click.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const { api, el, flash, guard, fileUrl } = Studio;
  let models = { runs: [], models: [], loras: [] };
  let pickBooks = () => [];
  let reloadBooks = () => {};
  let typed = false;
  let currentJob = null;

  function fillModels() {
    const kind = $("model-kind").value;
    let items = [];
    if (kind === "run") items = models.runs.filter((r) => r.finished).map((r) => [r.path, r.path]);
    if (kind === "checkpoint") items = models.runs.flatMap((r) => r.checkpoints.map((c) => [c.path, `${r.path} @ step ${c.step}`]));
    if (kind === "model") items = models.models.map((m) => [m, m]);
    Studio.options($("model-path"), items.length ? items : [["", "none in the workspace"]]);
    $("lora-fields").hidden = kind !== "model";
    applyRunDefaults();
    reloadBooks();
  }

  // A run's own sampling settings (sampler, steps, guidance) are the natural starting point.
  async function applyRunDefaults() {
    if ($("model-kind").value !== "run" || !$("model-path").value) return;
    const r = await guard(() => api("GET", `/api/run?path=${encodeURIComponent($("model-path").value)}`));
    if (r && r.sample && r.sample.steps) {
      $("steps").value = r.sample.steps;
      $("guidance").value = r.sample.guidance;
      $("sampler").value = r.sample.sampler;
      $("negative").value = r.sample.negative || "";
    }
  }

  function setTab(useTyped) {
    typed = useTyped;
    $("tab-list").setAttribute("aria-selected", String(!typed));
    $("tab-typed").setAttribute("aria-selected", String(typed));
    $("book-list-pane").hidden = typed;
    $("book-typed-pane").hidden = !typed;
  }

  function coverLink(c) {
    const q = new URLSearchParams({ art: c.path, title: c.title, author: c.author || "", genre: (c.genres || [])[0] || "" });
    return `/cover?${q}`;
  }

  function card(c) {
    // Lettering the model painted into the art (OCR): a typeset title will sit over it.
    const stray = c.stray_text ? (c.stray_text.found ? `stray text: “${c.stray_text.texts.join(" ")}”` : "no stray text") : "";
    return el("div", { class: "card", "data-seed": c.seed },
      el("a", { href: fileUrl(c.path), target: "_blank", rel: "noopener" }, el("img", { src: fileUrl(c.path), alt: `${c.title}, seed ${c.seed}` })),
      el("div", { class: "meta" }, el("b", { text: c.title }), el("span", { text: `seed ${c.seed} · ${c.width}×${c.height}` }),
        stray ? el("div", { class: c.stray_text.found ? "scores warn" : "scores", text: stray }) : null,
        el("button", { type: "button", class: "secondary", onclick: () => { location.href = coverLink(c); } , text: "Make cover" })));
  }

  async function generate(event) {
    event.preventDefault();
    flash("");
    const body = {
      model: { kind: $("model-kind").value, path: $("model-path").value, lora: $("model-kind").value === "model" ? $("model-lora").value : "",
               lora_scale: Number($("lora-scale").value) },
      seeds: $("seeds").value, steps: Number($("steps").value), guidance: Number($("guidance").value),
      sampler: $("sampler").value, aspect: $("aspect").value, negative: $("negative").value,
    };
    if (typed) body.book = { title: $("book-title").value, author: $("book-author").value, genres: $("book-genres").value, blurb: $("book-blurb").value };
    else { body.source = $("book-source").value; body.books = pickBooks(); }
    const job = await guard(() => api("POST", "/api/generate", body));
    if (!job) return;
    currentJob = job.id;
    $("candidates").replaceChildren();
    $("generate-btn").disabled = true;
    $("gen-stop").hidden = false;
    let shown = 0;
    const done = await guard(() => Studio.follow(job.id, (j) => {
      for (const c of j.results.slice(shown)) $("candidates").append(card(c));
      shown = j.results.length;
      $("gen-bar").style.width = `${j.total ? (100 * j.done) / j.total : 0}%`;
      $("gen-status").textContent = `${j.status}: ${j.done} of ${j.total} candidates`;
    }));
    $("generate-btn").disabled = false;
    $("gen-stop").hidden = true;
    if (done && done.status === "failed") flash(done.message);
  }

  document.addEventListener("DOMContentLoaded", async () => {
    $("gen-form").addEventListener("submit", generate);
    $("model-kind").addEventListener("change", fillModels);
    $("model-path").addEventListener("change", () => { applyRunDefaults(); reloadBooks(); });
    $("tab-list").addEventListener("click", () => setTab(false));
    $("tab-typed").addEventListener("click", () => setTab(true));
    $("gen-stop").addEventListener("click", () => currentJob && guard(() => api("POST", `/api/jobs/${currentJob}/stop`)));
    const data = await guard(() => api("GET", "/api/models"));
    if (data) {
      models = data;
      Studio.options($("model-lora"), [["", "none"], ...models.loras.map((l) => [l, l])]);
      if (!models.runs.some((r) => r.finished)) $("model-kind").value = models.runs.some((r) => r.checkpoints.length) ? "checkpoint" : "model";
      fillModels();
    }
    // A catalogue is read with the prompt recipe of the dataset the chosen run was trained on.
    const run = () => (["run", "checkpoint"].includes($("model-kind").value) ? $("model-path").value : "");
    const picker = await guard(() => Studio.bookPicker({ source: $("book-source"), search: $("book-search"), list: $("book-list"), multiple: true, max: 16,
                                                          run, note: $("book-prompts") }));
    if (picker) [pickBooks, reloadBooks] = picker;
    if (!$("book-source").value) setTab(true);
  });
})();
