// Runs page: the workspace's runs, one run's detail (loss curve, grids, reports, log),
// starting, stopping and resuming trainings.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const { api, el, flash, guard, fileUrl } = Studio;
  let selected = null;
  let configs = [];

  function fmt(value, digits = 4) {
    return typeof value === "number" ? value.toPrecision(digits) : "–";
  }

  function drawRuns(runs) {
    const body = $("runs-body");
    if (!runs.length) {
      body.replaceChildren(el("tr", {}, el("td", { colspan: 6, class: "muted", text: "No run folders yet: start a training on the right." })));
      return;
    }
    body.replaceChildren(...runs.map((r) => el("tr", { class: r.path === selected ? "selected" : "", "data-run": r.path, onclick: () => select(r.path) },
      el("td", {}, el("b", { text: r.name }), el("div", { class: "muted", text: r.path })),
      el("td", {}, el("span", { class: `badge ${r.status}`, text: r.status })),
      el("td", { text: r.max_steps ? `${r.step} / ${r.max_steps}` : String(r.step) }),
      el("td", { text: fmt(r.loss) }),
      el("td", { text: r.recipe || "" }),
      el("td", { text: String(r.checkpoints.length) }))));
  }

  // Raw loss in grey, a debiased moving average (as TensorBoard smooths) in the accent colour.
  function drawCurve(points) {
    const svg = $("loss-curve");
    const ns = "http://www.w3.org/2000/svg";
    svg.replaceChildren();
    const label = (x, y, text) => { const t = document.createElementNS(ns, "text"); t.setAttribute("x", x); t.setAttribute("y", y); t.textContent = text; svg.append(t); };
    if (points.length < 2) { label(250, 120, "no loss logged yet"); return; }
    const [W, H, P] = [640, 240, 34];
    const steps = points.map((p) => p[0]);
    const losses = points.map((p) => p[1]);
    let avg = 0;
    const smooth = losses.map((v, i) => { avg = 0.9 * avg + 0.1 * v; return avg / (1 - 0.9 ** (i + 1)); });
    const lo = Math.min(...losses), hi = Math.max(...losses) > lo ? Math.max(...losses) : lo + 1e-9;
    const x = (s) => P + ((s - steps[0]) / Math.max(1, steps[steps.length - 1] - steps[0])) * (W - 2 * P);
    const y = (v) => H - P + 10 - ((v - lo) / (hi - lo)) * (H - 2 * P);
    for (const [cls, values] of [["raw", losses], ["smooth", smooth]]) {
      const line = document.createElementNS(ns, "polyline");
      line.setAttribute("class", cls);
      line.setAttribute("points", values.map((v, i) => `${x(steps[i]).toFixed(1)},${y(v).toFixed(1)}`).join(" "));
      svg.append(line);
    }
    label(4, P, hi.toPrecision(3));
    label(4, H - P + 10, lo.toPrecision(3));
    label(P, H - 6, `step ${steps[0]}`);
    label(W - P - 60, H - 6, `step ${steps[steps.length - 1]}`);
  }

  async function showDetail() {
    if (!selected) return;
    const r = await api("GET", `/api/run?path=${encodeURIComponent(selected)}`);
    $("run-detail").hidden = false;
    $("detail-name").textContent = r.name;
    $("detail-status").textContent = r.status;
    $("detail-status").className = `badge ${r.status}`;
    const active = ["training", "stopping", "starting"].includes(r.status);
    $("stop-btn").hidden = !active;
    $("resume-btn").hidden = active || !r.checkpoints.length;  // a finished run too: raise the step count to train on
    $("resume-steps").parentElement.hidden = $("resume-btn").hidden;
    if (!$("resume-steps").value && r.max_steps) $("resume-steps").value = r.max_steps;
    drawCurve(r.curve || []);
    const share = r.max_steps ? Math.min(1, r.step / r.max_steps) : 0;
    $("detail-bar").style.width = `${(share * 100).toFixed(1)}%`;
    const speed = typeof r.images_per_s === "number" ? `, ${r.images_per_s.toFixed(1)} images/s` : "";
    $("detail-progress").textContent = `step ${r.step}${r.max_steps ? " of " + r.max_steps : ""}, loss ${fmt(r.loss)}${speed}` +
      (r.job && r.job.message ? ` — ${r.job.message}` : "");
    $("detail-reports").replaceChildren(...(r.reports.length ? r.reports.map((p) => el("li", {}, el("a", { href: fileUrl(p), target: "_blank", rel: "noopener", text: p })))
      : [el("li", { class: "muted", text: "none yet (coverforge evaluate RUN --out RUN/eval)" })]));
    $("detail-log").textContent = (r.log || []).join("\n") || "(no studio log: started outside the studio)";
    const grids = r.samples.slice(-4).reverse();
    $("detail-samples").replaceChildren(...(grids.length ? grids.map((p) => el("figure", {}, el("figcaption", { text: p.split("/").pop() }), el("img", { src: fileUrl(p), alt: p })))
      : [el("p", { class: "muted", text: "no validation grids yet (sample.prompts in the config)" })]));
  }

  function select(path) {
    selected = path;
    $("resume-steps").value = "";
    for (const row of document.querySelectorAll("#runs-body tr")) row.classList.toggle("selected", row.dataset.run === path);
    guard(showDetail);
  }

  function drawJobs(jobs) {
    const rows = jobs.slice(0, 20).map((j) => el("tr", { "data-job": j.id },
      el("td", {}, el("b", { text: j.kind }), el("div", { class: "muted", text: j.title })),
      el("td", {}, el("span", { class: `badge ${j.status}`, text: j.status })),
      el("td", { text: j.kind === "train" ? "" : `${j.done} / ${j.total}` }),
      el("td", { text: new Date(j.created * 1000).toLocaleString() }),
      el("td", { class: "muted", text: j.message || "" })));
    $("jobs-body").replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 5, class: "muted", text: "No jobs yet." }))]));
  }

  let pollTimer;
  async function refresh() {
    clearTimeout(pollTimer);
    const data = await guard(() => api("GET", "/api/runs"));
    if (data) {
      drawRuns(data.runs);
      if (!selected && data.runs.length) select(data.runs[0].path);
      else if (selected) await guard(showDetail);
    }
    const jobs = await guard(() => api("GET", "/api/jobs"));
    if (jobs) drawJobs(jobs.jobs);
    const busy = data && data.runs.some((r) => ["training", "stopping", "starting"].includes(r.status));
    pollTimer = setTimeout(refresh, busy ? 1500 : 8000);
  }

  function drawFields() {
    const cfg = configs.find((c) => c.path === $("train-config").value);
    const box = $("train-fields");
    if (!cfg) { box.replaceChildren(); return; }
    if (cfg.error) { box.replaceChildren(el("p", { class: "muted", text: cfg.error })); return; }
    box.replaceChildren(...Object.entries(cfg.fields).filter(([name]) => cfg.recipe === "lora" || !name.startsWith("lora.")).map(([name, value]) =>
      el("label", {}, name, el("input", { name, "data-field": name, value: value ?? "", type: typeof value === "number" ? "number" : "text", step: "any" }))));
  }

  async function startTraining(event) {
    event.preventDefault();
    const fields = {};
    for (const input of $("train-fields").querySelectorAll("input[data-field]")) {
      const v = input.value.trim();
      if (v !== "") fields[input.dataset.field] = input.type === "number" ? Number(v) : v;
    }
    const job = await guard(() => api("POST", "/api/train", { config: $("train-config").value, run_name: $("train-run-name").value.trim(), fields }));
    if (job) {
      flash(`training ${job.run} started`, true);
      selected = job.run;
      refresh();
    }
  }

  async function stop() {
    const r = await guard(() => api("GET", `/api/run?path=${encodeURIComponent(selected)}`));
    if (r && r.job) {
      await guard(() => api("POST", `/api/jobs/${r.job.id}/stop`));
      flash("stopping: the run finishes its step and writes a checkpoint", true);
      refresh();
    }
  }

  async function resume() {
    const steps = $("resume-steps").value ? Number($("resume-steps").value) : null;
    const job = await guard(() => api("POST", "/api/resume", { run: selected, max_steps: steps }));
    if (job) { flash(`resuming ${job.run}`, true); refresh(); }
  }

  document.addEventListener("DOMContentLoaded", async () => {
    $("train-form").addEventListener("submit", startTraining);
    $("train-config").addEventListener("change", drawFields);
    $("stop-btn").addEventListener("click", stop);
    $("resume-btn").addEventListener("click", resume);
    const data = await guard(() => api("GET", "/api/configs"));
    configs = data ? data.configs : [];
    Studio.options($("train-config"), configs.map((c) => [c.path, c.name]));
    if (!configs.length) $("train-fields").replaceChildren(el("p", { class: "muted", text: "No configs/*.toml in the workspace." }));
    drawFields();
    refresh();
  });
})();
