// Cover page: art (a candidate or an upload), title and author, layout, size; typeset, look at
// the proof, download PNG and PDF.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const { api, el, flash, guard, fileUrl } = Studio;

  function format() {
    return document.querySelector("input[name=format]:checked").value;
  }

  function showFormat() {
    $("print-fields").hidden = format() === "ebook";
    $("wrap-fields").hidden = format() !== "wrap";
  }

  function showArt() {
    const path = $("art-select").value;
    $("art-preview").hidden = !path;
    if (path) $("art-preview").src = fileUrl(path);
  }

  // Every candidate generated in this workspace, newest first.
  async function loadCandidates(preselect) {
    const data = await guard(() => api("GET", "/api/candidates"));
    const items = [["", "choose a generated candidate…"]];
    for (const c of data ? data.candidates : []) items.push([c.path, `${c.title}, seed ${c.seed} (${c.model})`]);
    if (preselect && !items.some(([v]) => v === preselect)) items.push([preselect, preselect.split("/").pop()]);
    Studio.options($("art-select"), items, false);
    if (preselect) $("art-select").value = preselect;
    showArt();
  }

  // The bundled fonts, each previewed in its own face (loaded from the studio, never a CDN).
  let fonts = [];
  async function loadFonts() {
    const data = await guard(() => api("GET", "/api/fonts"));
    fonts = data ? data.fonts : [];
    Studio.options($("font"), [["", "the layout's typefaces"], ...fonts.map((f) => [f.name, f.label])]);
    for (const f of fonts) {
      const face = new FontFace(`studio-${f.name}`, `url(${f.url})`, { weight: f.bold ? "700" : "400" });
      document.fonts.add(face);
      face.load().catch(() => {});
    }
    showFont();
  }

  function showFont() {
    const font = fonts.find((f) => f.name === $("font").value);
    $("font-sample").hidden = !font;
    if (!font) return;
    $("font-sample").textContent = $("title").value || "The Salt Road";
    $("font-sample").style.fontFamily = `"studio-${font.name}"`;
    $("font-sample").style.fontWeight = font.bold ? "700" : "400";
  }

  async function upload() {
    const file = $("art-upload").files[0];
    if (!file) return;
    const saved = await guard(() => api("POST", "/api/uploads", file));
    if (saved) {
      await loadCandidates(saved.path);
      flash(`uploaded ${file.name}`, true);
    }
    $("art-upload").value = "";
  }

  async function typeset(event) {
    event.preventDefault();
    flash("");
    if (!$("art-select").value) { flash("choose a candidate or upload an image first"); return; }
    $("typeset-btn").disabled = true;
    $("cover-summary").textContent = "typesetting…";
    const result = await guard(() => api("POST", "/api/covers", {
      art: $("art-select").value, title: $("title").value, subtitle: $("subtitle").value, author: $("author").value,
      genre: $("genre").value, layout: $("layout").value, font: $("font").value, format: format(), trim: $("trim").value,
      pages: Number($("pages").value), paper: $("paper").value, back_text: $("back-text").value,
    }));
    $("typeset-btn").disabled = false;
    if (!result) { $("cover-summary").textContent = ""; return; }
    const inches = result.name === "ebook" ? "" : `, ${result.width_in} × ${result.height_in} in`;
    const spine = result.spine_in ? `, spine ${result.spine_in} in` : "";
    const reads = result.legibility;
    const faces = `title in ${result.typefaces.title}` + (result.typefaces.author ? `, author in ${result.typefaces.author}` : "");
    $("cover-summary").textContent = `${result.width_px} × ${result.height_px} px${inches}${spine}; layout ${result.layout}; ${faces}; lowest text contrast ${result.contrast}:1. ` +
      `${reads.summary.join("; ")}${reads.scrim_floor > 0 ? `; scrim raised to ${Math.round(reads.scrim_floor * 100)}% for OCR` : ""}` +
      (reads.title_reads ? "" : ". The title does not read back at full size: try another layout or art.");
    $("cover-summary").className = reads.title_reads ? "hint" : "hint warn";
    for (const [id, path] of [["proof", result.proof], ["cover-img", result.png]]) {
      $(id).src = fileUrl(path);
      $(id).hidden = false;
    }
    $("download-png").href = fileUrl(result.png, true);
    $("download-pdf").href = fileUrl(result.pdf, true);
    $("download-proof").href = fileUrl(result.proof, true);
    $("downloads").hidden = false;
  }

  document.addEventListener("DOMContentLoaded", () => {
    const q = new URLSearchParams(location.search);
    for (const name of ["title", "author", "genre"]) if (q.get(name)) $(name).value = q.get(name);
    $("cover-form").addEventListener("submit", typeset);
    $("art-select").addEventListener("change", showArt);
    $("art-upload").addEventListener("change", upload);
    $("font").addEventListener("change", showFont);
    $("title").addEventListener("input", showFont);
    for (const radio of document.querySelectorAll("input[name=format]")) radio.addEventListener("change", showFormat);
    showFormat();
    loadCandidates(q.get("art") || "");
    loadFonts();
  });
})();
