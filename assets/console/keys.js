// Enrolling this browser's signing key (hall staff), and approving enrolled keys (admins).
import { api, showProblem } from "./console.js";
import { loadKey, makeKey, saveKey } from "./devicekey.js";

async function enrolment(section) {
  const { hall, staff } = section.dataset;
  const status = document.getElementById("device-key-status");
  const kidBox = document.getElementById("device-kid");
  const show = async () => {
    const entry = await loadKey(staff, hall);
    if (!entry) { status.textContent = section.dataset.none; kidBox.textContent = "—"; return; }
    kidBox.textContent = entry.kid;
    const res = await api("GET", "/api/v1/device-keys");
    const mine = (res.body?.items ?? []).find((r) => r.kid === entry.kid);
    const state = mine?.state ?? "pending";
    status.textContent = section.dataset[state] ?? state;
    status.className = `banner ${state === "approved" ? "ok" : state === "rejected" ? "bad" : "warn"}`;
    status.dataset.state = state;
  };
  document.getElementById("make-key").addEventListener("click", async (event) => {
    event.target.disabled = true;
    const made = await makeKey(staff);
    const res = await api("POST", "/api/v1/device-keys", { kid: made.kid, alg: "ES256", public_key_pem: made.pem });
    event.target.disabled = false;
    if (!res.ok) return showProblem(section, res.body);
    await saveKey(staff, hall, { kid: made.kid, keys: made.keys });
    await show();
  });
  await show();
}

async function approvals(section) {
  const body = section.querySelector("tbody");
  const res = await api("GET", "/api/v1/device-keys?state=pending");
  if (!res.ok) return showProblem(section, res.body);
  const items = res.body?.items ?? [];
  if (!items.length) {
    const row = body.insertRow();
    const cell = row.insertCell();
    cell.colSpan = 5;
    cell.textContent = section.dataset.empty;
    cell.className = "empty";
  }
  for (const r of items) {
    const row = body.insertRow();
    row.dataset.kid = r.kid;
    for (const text of [r.kid, r.hall_id, r.username, new Date(r.requested_at).toLocaleString(document.documentElement.lang, { timeZone: "Asia/Shanghai" })]) {
      row.insertCell().textContent = text;
    }
    const cell = row.insertCell();
    const approve = document.createElement("button");
    approve.type = "button";
    approve.className = "primary";
    approve.textContent = section.dataset.approve;
    approve.dataset.approve = r.id;
    const reason = document.createElement("input");
    reason.setAttribute("aria-label", section.dataset.reason);
    reason.placeholder = section.dataset.reason;
    const reject = document.createElement("button");
    reject.type = "button";
    reject.textContent = section.dataset.reject;
    cell.append(approve, " ", reason, " ", reject);
    approve.addEventListener("click", async () => {
      const done = await api("POST", `/api/v1/device-keys/${encodeURIComponent(r.id)}/approve`, {});
      if (!done.ok) return showProblem(section, done.body);
      window.location.reload();
    });
    reject.addEventListener("click", async () => {
      const done = await api("POST", `/api/v1/device-keys/${encodeURIComponent(r.id)}/reject`, { reason: reason.value });
      if (!done.ok) return showProblem(section, done.body);
      window.location.reload();
    });
  }
}

const enrol = document.getElementById("enrol");
if (enrol) enrolment(enrol);
const pending = document.getElementById("pending-keys");
if (pending) approvals(pending);
