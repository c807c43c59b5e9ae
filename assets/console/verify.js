// The verification page: upload the files (each SHA-256 computed here, with progress), fill
// the result, sign it with this device's key, submit. The private key never leaves the browser.
import { api, clearProblems, showProblem } from "./console.js";
import { loadKey, signJws } from "./devicekey.js";

const root = document.getElementById("verify");
const { order, hall, staff, msisdn } = root.dataset;
const required = root.dataset.required.split(" ").filter(Boolean);
const uploaded = new Map();
const form = document.getElementById("result-form");
const keyStatus = document.getElementById("key-status");

const hex = (buffer) => [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("");

for (const box of root.querySelectorAll(".upload")) {
  const kind = box.dataset.kind;
  const input = box.querySelector("input[type=file]");
  const progress = box.querySelector("progress");
  const shaBox = box.querySelector("code.sha");
  const error = box.querySelector(".error");
  input.addEventListener("change", async () => {
    const file = input.files[0];
    if (!file) return;
    error.hidden = true;
    const bytes = await file.arrayBuffer();
    const sha256 = hex(await crypto.subtle.digest("SHA-256", bytes));
    shaBox.textContent = `SHA-256 ${sha256} · ${root.dataset.uploading}…`;
    progress.hidden = false;
    progress.value = 0;
    const res = await api("POST", `/api/v1/work-orders/${order}/evidence?kind=${kind}`, bytes, {
      contentType: file.type || "application/octet-stream",
      onProgress: (p) => { progress.value = p; },
    });
    if (!res.ok) {
      error.textContent = [res.body?.title, res.body?.detail].filter(Boolean).join("：");
      error.hidden = false;
      shaBox.textContent = "";
      uploaded.delete(kind);
      return;
    }
    progress.value = 100;
    uploaded.set(kind, res.body.sha256);
    shaBox.textContent = `SHA-256 ${res.body.sha256} · ${root.dataset.uploaded} ✔`;
    box.dataset.uploaded = res.body.sha256;
  });
}

let entry;
(async () => {
  entry = await loadKey(staff, hall);
  if (!entry) { keyStatus.textContent = root.dataset.noKey; keyStatus.className = "banner warn"; return; }
  keyStatus.textContent = `${root.dataset.keyOk}${entry.kid}`;
  keyStatus.className = "banner ok";
})();

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearProblems(form);
  if (!entry) return showProblem(form, { detail: root.dataset.noKey });
  const outcome = form.elements.outcome.value;
  if (outcome === "match" && required.some((k) => !uploaded.has(k))) return showProblem(form, { detail: root.dataset.missing });
  const value = (name) => form.elements[name].value;
  const payload = {
    wo: order, hall, staff, msisdn, outcome,
    document: outcome === "no_show" ? null : {
      type: "resident_id", number: value("document.number").trim(), name: value("document.name").trim(),
      valid_until: value("document.valid_until"),
    },
    method: {
      chip_read: form.elements["method.chip_read"].checked,
      face_match_score: Number(value("method.face_match_score")),
      operator_checked: form.elements["method.operator_checked"].checked,
    },
    evidence: [...uploaded].map(([kind, sha256]) => ({ kind, sha256 })),
    iat: Math.floor(Date.now() / 1000),
    jti: crypto.randomUUID(),
  };
  const button = document.getElementById("sign-submit");
  button.disabled = true;
  const result = await signJws(entry, payload);
  const res = await api("POST", `/api/v1/work-orders/${order}/verification`, { result });
  button.disabled = false;
  if (!res.ok) return showProblem(form, res.body);
  window.location.assign(`/console/orders/${order}`);
});
