// secmon console: the few things a server-rendered page cannot do alone (polling, keys, selection).
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content;
  const headers = { "X-Requested-With": "secmon-console" };

  async function getJSON(url) {
    const response = await fetch(url, { headers, credentials: "same-origin", cache: "no-store" });
    if (response.status === 401) { location.reload(); throw new Error("signed out"); }
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
    return response.json();
  }

  // Health strip: events/s, disk buffer, cluster health, dead letters.
  const health = document.getElementById("health");
  async function readHealth() {
    try {
      const h = await getJSON(health.dataset.src);
      health.replaceChildren(...h.items.map((item) => {
        const span = document.createElement("span");
        span.className = item.state;
        span.textContent = `${item.label}: ${item.value}`;
        if (item.detail) span.title = item.detail;
        return span;
      }));
    } catch (error) {
      health.textContent = "Health: cannot be read right now";
    }
  }
  if (health) { readHealth(); setInterval(readHealth, 15000); }

  // Anything else is for the queue.
  const queue = document.getElementById("queue");
  if (!queue) return;

  const marker = document.getElementById("new-alerts");
  async function pollNew() {
    try {
      const answer = await getJSON(`/console/queue/new?${marker.dataset.view}&after=${encodeURIComponent(marker.dataset.after)}`);
      if (answer.new > 0) {
        marker.textContent = `${answer.new}${answer.exact === false ? "+" : ""} new`;
        marker.hidden = false;
        document.title = `(${answer.new}) Alerts · secmon`;
      }
    } catch (error) { /* the next poll tries again */ }
  }
  setInterval(pollNew, Number(document.body.dataset.pollMs || 10000));

  const rows = Array.from(queue.querySelectorAll("tbody tr[data-id]"));
  const boxes = () => Array.from(queue.querySelectorAll('tbody input[name="id"]'));
  const selectAll = document.getElementById("select-all");
  const counter = document.getElementById("selected-count");
  function countSelected() {
    const n = boxes().filter((b) => b.checked).length;
    if (counter) counter.textContent = `${n} selected`;
  }
  selectAll?.addEventListener("change", () => { boxes().forEach((b) => { b.checked = selectAll.checked; }); countSelected(); });
  queue.addEventListener("change", countSelected);

  let focused = -1;
  function focusRow(index) {
    if (!rows.length) return;
    focused = Math.max(0, Math.min(rows.length - 1, index));
    rows.forEach((row, i) => row.classList.toggle("focused", i === focused));
    rows[focused].focus();
    rows[focused].scrollIntoView({ block: "nearest" });
  }
  rows.forEach((row, i) => row.addEventListener("click", (event) => {
    if (event.target.closest("a, input, button")) return;
    focusRow(i);
  }));

  function targets() {
    // The selected alerts, or else the focused one.
    const chosen = boxes().filter((b) => b.checked).map((b) => b.value);
    if (chosen.length) return chosen;
    return focused >= 0 ? [rows[focused].dataset.id] : [];
  }

  async function triage(fields) {
    const ids = targets();
    if (!ids.length || !csrf) return;
    const form = new FormData();
    form.append("csrf", csrf);
    form.append("back", location.pathname + location.search);
    ids.forEach((id) => form.append("id", id));
    Object.entries(fields).forEach(([name, value]) => form.append(name, value));
    const response = await fetch("/console/alerts/triage", { method: "POST", body: form, credentials: "same-origin", headers: { "X-CSRF-Token": csrf } });
    location.assign(response.url || location.href);
  }

  const dialog = document.getElementById("close-dialog");
  dialog?.addEventListener("close", () => {
    if (dialog.returnValue !== "close") return;
    const data = new FormData(document.getElementById("close-form"));
    triage({ action: "close", resolution: data.get("resolution"), note: data.get("note") || "" });
  });

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest("input, textarea, select, dialog")) return;
    switch (event.key) {
      case "j": focusRow(focused + 1); break;
      case "k": focusRow(focused - 1); break;
      case "Enter": if (focused >= 0) location.assign(rows[focused].dataset.href); break;
      case "x": if (focused >= 0) { const box = rows[focused].querySelector('input[name="id"]'); box.checked = !box.checked; countSelected(); } break;
      case "a": triage({ action: "acknowledge" }); break;
      case "c": if (targets().length && dialog) dialog.showModal(); break;
      default: return;
    }
    event.preventDefault();
  });
})();
