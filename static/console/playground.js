// The agent playground (templates/admin/console/playground.html): start runs, follow each
// over its event stream (the API's SSE events), approve or deny a held call in place.
// No inline script runs under the console's CSP, so everything is wired up from here.
"use strict";

(function () {
  const form = document.getElementById("playground-form");
  if (!form) return;
  const runs = document.getElementById("pg-runs");
  const errorBox = document.getElementById("pg-error");
  const csrf = () => form.querySelector("[name=csrfmiddlewaretoken]").value;
  const TERMINAL = new Set(["completed", "failed", "cancelled", "timed_out"]);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) node.append(child);
    return node;
  }
  const pretty = (value) => (typeof value === "string" ? value : JSON.stringify(value, null, 2));

  function showError(body) {
    const error = (body && body.error) || { message: "The request failed." };
    const problems = (error.details && error.details.validation_errors) || {};
    const lines = Object.entries(problems).map(([field, msgs]) => `${field}: ${msgs.join(" ")}`);
    errorBox.textContent = [error.message, ...lines].join(" ");
    errorBox.hidden = false;
  }

  function panel(run) {
    const status = el("span", { class: `badge ${run.status}`, "data-role": "status", text: run.status });
    const steps = el("ol", { class: "timeline", "data-role": "steps" });
    const answer = el("div", { class: "answer", "data-role": "answer", hidden: "" });
    const box = el(
      "section",
      { class: "run-panel module", "data-execution": run.id },
      el("h2", {}, run.draft ? "Draft (unpublished) " : `Version ${run.version} `, status, " ", el("a", { href: run.trace_url, text: "trace" })),
      el("div", { class: "step-body" }, steps, answer),
    );
    runs.append(box);
    follow(run, box, status, steps, answer);
  }

  function stepItem(steps, number, kind, what) {
    let item = steps.querySelector(`[data-step="${number}"]`);
    if (!item) {
      item = el(
        "li",
        { class: kind, "data-step": String(number) },
        el(
          "div",
          { class: "step" },
          el("div", { class: "step-body" },
            el("p", {}, el("span", { class: "kind", text: `#${number} ${kind} ` }), el("span", { "data-role": "what", text: what || "" }),
              " ", el("span", { class: "nums", "data-role": "nums" })),
            el("pre", { "data-role": "text" })),
        ),
      );
      steps.append(item);
    }
    return item;
  }
  const part = (item, role) => item.querySelector(`[data-role="${role}"]`);

  function held(run, item, data) {
    const approval = data.approval || {};
    const note = el("input", { type: "text", placeholder: "Note (optional)", "data-role": "note" });
    const approve = el("button", { type: "button", class: "button default", "data-role": "approve", text: "Approve" });
    const deny = el("button", { type: "button", class: "button", "data-role": "deny", text: "Deny" });
    const result = el("span", { class: "muted", "data-role": "decision" });
    const box = el("div", { class: "held" },
      el("p", {}, el("b", { text: `${data.tool} waits for a decision` }), approval.risk_level ? ` · risk ${approval.risk_level}` : "",
        approval.reason ? ` · ${approval.reason}` : ""),
      el("pre", { text: pretty(data.input) }), note, " ", approve, " ", deny, " ", result);
    item.querySelector(".step-body").append(box);
    const decide = async (decision) => {
      approve.disabled = deny.disabled = true;
      const body = new FormData();
      body.append("note", note.value);
      const response = await fetch(`${run.decide_url}${approval.approval_id}/${decision}/`, {
        method: "POST", body, headers: { "X-CSRFToken": csrf() }, credentials: "same-origin",
      });
      const answer = await response.json().catch(() => ({}));
      if (response.ok) result.textContent = answer.status;
      else { result.textContent = (answer.error && answer.error.message) || `refused (${response.status})`; approve.disabled = deny.disabled = false; }
    };
    approve.addEventListener("click", () => decide("approve"));
    deny.addEventListener("click", () => decide("deny"));
  }

  function follow(run, box, status, steps, answer) {
    const source = new EventSource(run.stream_url, { withCredentials: true });
    const on = (name, handler) => source.addEventListener(name, (event) => handler(JSON.parse(event.data)));
    on("status", (d) => { status.textContent = d.status; status.className = `badge ${d.status}`; });
    on("observe_completed", (d) => { part(stepItem(steps, d.step_number, "observe"), "text").textContent = d.input; });
    on("think_started", (d) => { part(stepItem(steps, d.step_number, "think", "thinking…"), "nums").textContent = ""; });
    on("think_token", (d) => { part(stepItem(steps, d.step_number, "think"), "text").textContent += d.text; });
    on("think_completed", (d) => {
      const item = stepItem(steps, d.step_number, "think");
      const calls = (d.tool_calls || []).map((c) => c.name);
      part(item, "what").textContent = calls.length ? `calls ${calls.join(", ")}` : "answered";
      part(item, "text").textContent = d.content || "";
      part(item, "nums").textContent = `${d.tokens} tok · $${d.cost} · ${d.model}`;
    });
    on("act_started", (d) => {
      const item = stepItem(steps, d.step_number, "act", d.tool);
      part(item, "text").textContent = `arguments: ${pretty(d.input)}`;
    });
    const acted = (d) => {
      const item = stepItem(steps, d.step_number, "act", d.tool);
      part(item, "text").textContent += `\nresult: ${pretty(d.output)}`;
      part(item, "nums").textContent = d.status || "";
    };
    on("act_completed", acted);
    on("act_failed", (d) => { acted(d); stepItem(steps, d.step_number, "act").classList.add("is-error"); });
    on("approval_requested", (d) => held(run, stepItem(steps, d.step_number, "act", d.tool), d));
    on("approval_resolved", (d) => {
      const item = steps.querySelector(`[data-step="${d.step_number}"]`);
      if (item) part(item, "decision").textContent = d.approved ? "approved" : "denied";
    });
    const finished = (d) => {
      status.textContent = d.status; status.className = `badge ${d.status}`;
      answer.hidden = false;
      answer.textContent = d.status === "completed" ? pretty(d.output && d.output.text !== undefined ? d.output.text : d.output)
        : `${d.error_code || d.status}: ${d.error || ""}`;
      part(box, "status").dataset.final = "1";
      source.close();
    };
    on("execution_completed", finished);
    on("execution_failed", finished);
    source.onerror = () => { if (TERMINAL.has(status.textContent)) source.close(); };
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errorBox.hidden = true;
    const button = document.getElementById("pg-run");
    button.disabled = true;
    try {
      const response = await fetch(form.action, {
        method: "POST", body: new FormData(form), headers: { "X-CSRFToken": csrf() }, credentials: "same-origin",
      });
      const body = await response.json().catch(() => ({}));
      if (!response.ok) { showError(body); return; }
      runs.replaceChildren();
      body.runs.forEach(panel);
    } finally {
      button.disabled = false;
    }
  });
})();
