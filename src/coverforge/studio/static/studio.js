// coverforge studio: helpers shared by the pages. Plain JavaScript, no libraries: every action
// is a call to the studio's JSON API, and what comes back is drawn with the DOM.
"use strict";

const Studio = {
  // fetch JSON; a non-2xx answer becomes an Error carrying the API's one-line message.
  async api(method, url, body) {
    const init = { method, headers: {} };
    if (body instanceof Blob) {
      init.body = body;
      init.headers["Content-Type"] = body.type || "application/octet-stream";
    } else if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch (e) {
      throw new Error("the studio is not answering: is `coverforge studio` still running?");
    }
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.error || `request failed (${response.status})`);
    return data;
  },

  flash(message, ok = false) {
    const box = document.getElementById("flash");
    box.textContent = message;
    box.className = ok ? "ok" : "";
    box.hidden = !message;
  },

  // Run an async action; its error goes to the page's message box, never to the console only.
  async guard(action) {
    try {
      return await action();
    } catch (e) {
      Studio.flash(e.message);
      return undefined;
    }
  },

  el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "text") node.textContent = value;
      else if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child !== undefined && child !== null) node.append(child);
    }
    return node;
  },

  fileUrl(path, download = false) {
    const url = "/files/" + path.split("/").map(encodeURIComponent).join("/");
    return download ? url + "?download=1" : url;
  },

  options(select, items, keep = true) {
    const previous = select.value;
    select.replaceChildren(...items.map(([value, label]) => Studio.el("option", { value, text: label })));
    if (keep && items.some(([value]) => value === previous)) select.value = previous;
  },

  // Poll a job until it ends; onUpdate gets every state (results arrive as they finish).
  async follow(jobId, onUpdate, interval = 700) {
    for (;;) {
      const job = await Studio.api("GET", `/api/jobs/${jobId}`);
      onUpdate(job);
      if (!["queued", "running", "stopping"].includes(job.status)) return job;
      await new Promise((resolve) => setTimeout(resolve, interval));
    }
  },

  // Book sources and a searchable, checkable list of their books (Generate and Compare). `run()`:
  // the run whose dataset's prompt recipe reads a catalogue; `note`: where the prompts come from.
  // Returns [the checked books' indices, a function that reloads the list].
  async bookPicker({ source, search, list, multiple, max, run = () => "", note = null }) {
    const data = await Studio.api("GET", "/api/book-sources");
    Studio.options(source, data.sources.map((s) => [s.path, `${s.path} (${s.kind})`]));
    const load = async () => {
      if (!source.value) {
        list.replaceChildren(Studio.el("li", { class: "muted", text: "No dataset or catalogue in the workspace: type a book instead." }));
        return;
      }
      const q = new URLSearchParams({ source: source.value, q: search.value.trim(), run: run(), limit: "200" });
      const found = await Studio.api("GET", `/api/books?${q}`);
      if (note) note.textContent = found.prompts;
      list.replaceChildren(...found.books.map((b, i) => {
        const box = Studio.el("input", { type: multiple ? "checkbox" : "radio", name: "book", value: b.index, checked: i === 0 && !multiple });
        return Studio.el("li", {}, Studio.el("label", {}, box, Studio.el("b", { text: b.title }), b.author ? ` — ${b.author}` : ""),
          Studio.el("span", { class: "genres", text: b.genres.join(", ") }));
      }));
    };
    source.addEventListener("change", () => Studio.guard(load));
    let timer;
    search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => Studio.guard(load), 250); });
    list.addEventListener("change", (event) => {
      if (multiple && max && list.querySelectorAll("input:checked").length > max) {
        event.target.checked = false;
        Studio.flash(`at most ${max} books at a time`);
      }
    });
    await load();
    return [() => [...list.querySelectorAll("input:checked")].map((box) => Number(box.value)), () => Studio.guard(load)];
  },
};
