// crossprov console: forms that call the API with the session cookie and its CSRF token,
// problems shown next to the field at fault, sortable tables, the session's end announced.

const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content ?? "";
const lang = () => document.documentElement.lang || "zh-CN";

/** Calls the API as the signed-in user; resolves to {ok, status, body}. */
export async function api(method, path, body, { ifMatch, raw, contentType, onProgress } = {}) {
  const headers = { "X-CSRF-Token": csrf(), "Accept-Language": lang() };
  if (ifMatch) headers["If-Match"] = `"${ifMatch}"`;
  if (onProgress) return upload(method, path, body, headers, contentType, onProgress);
  let payload;
  if (raw !== undefined) { payload = raw; headers["Content-Type"] = contentType; }
  else if (body !== undefined) { payload = JSON.stringify(body); headers["Content-Type"] = "application/json"; }
  const res = await fetch(path, { method, headers, body: payload, credentials: "same-origin" });
  const text = await res.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch { parsed = { detail: text }; }
  return { ok: res.ok, status: res.status, body: parsed };
}

// XMLHttpRequest, for the upload progress fetch cannot report.
function upload(method, path, bytes, headers, contentType, onProgress) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, path);
    for (const [k, v] of Object.entries(headers)) xhr.setRequestHeader(k, v);
    xhr.setRequestHeader("Content-Type", contentType);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(Math.round((100 * e.loaded) / e.total)); };
    xhr.onload = () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { body = { detail: xhr.responseText }; }
      resolve({ ok: xhr.status >= 200 && xhr.status < 300, status: xhr.status, body });
    };
    xhr.onerror = () => resolve({ ok: false, status: 0, body: { detail: "network error" } });
    xhr.send(bytes);
  });
}

/** Shows a problem next to its field in `form` (or at the form's top), in the page's language. */
export function showProblem(form, problem) {
  clearProblems(form);
  const field = problem?.field ?? "";
  const text = [problem?.title, problem?.detail].filter(Boolean).join("：");
  let slot = form.querySelector(`[data-error-for="${CSS.escape(field)}"]`);
  if (!slot) slot = form.querySelector('[data-error-for=""]');
  if (slot) { slot.textContent = text; slot.hidden = false; }
  const input = field && form.querySelector(`[name="${CSS.escape(field)}"]`);
  if (input) { input.setAttribute("aria-invalid", "true"); input.focus(); }
  else if (slot) { slot.setAttribute("tabindex", "-1"); slot.focus(); }
}

export function clearProblems(form) {
  form.querySelectorAll("[data-error-for]").forEach((e) => { e.hidden = true; e.textContent = ""; });
  form.querySelectorAll("[aria-invalid]").forEach((e) => e.removeAttribute("aria-invalid"));
}

// Form fields to the JSON body: dotted names nest; checkboxes are booleans; numbers are numbers;
// empty optional fields are left out; `data-path-only` fields only fill the path.
function bodyOf(form) {
  const body = {};
  for (const el of form.elements) {
    if (!el.name || el.disabled || el.dataset.pathOnly !== undefined) continue;
    let value;
    if (el.type === "checkbox") value = el.checked;
    else if (el.type === "number") { if (el.value === "") continue; value = Number(el.value); }
    else { if (el.value === "") continue; value = el.value; }
    const path = el.name.split(".");
    let at = body;
    for (const key of path.slice(0, -1)) at = at[key] ??= {};
    at[path[path.length - 1]] = value;
  }
  return body;
}

function wireApiForm(form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
    const [method, template] = form.dataset.api.split(" ");
    const path = template.replace(/\{(\w+)\}/g, (_, name) => encodeURIComponent(form.elements[name]?.value ?? ""));
    const button = form.querySelector('[type="submit"]');
    if (button) button.disabled = true;
    const res = await api(method, path, bodyOf(form), { ifMatch: form.dataset.ifMatch });
    if (button) button.disabled = false;
    if (!res.ok) return showProblem(form, res.body);
    const then = form.dataset.then;
    if (then === "reload") window.location.reload();
    else if (then) window.location.assign(then.replace("{id}", encodeURIComponent(res.body?.id ?? "")));
  });
}

// Province → city → hall: cities come with the page, halls from the API.
function wirePickers(root) {
  const province = root.querySelector('[data-picker="province"]');
  const city = root.querySelector('[data-picker="city"]');
  const hall = root.querySelector('[data-picker="hall"]');
  if (!province || !city) return;
  province.addEventListener("change", () => {
    city.value = "";
    for (const o of city.options) if (o.value) o.hidden = o.dataset.province !== province.value;
    if (hall) hall.length = 1;
  });
  if (hall) city.addEventListener("change", async () => {
    hall.length = 1;
    if (!city.value) return;
    const res = await api("GET", `/api/v1/halls?province=${province.value}&city=${city.value}`);
    for (const h of res.body?.items ?? []) {
      if (h.deactivated_at) continue;
      hall.add(new Option(`${h.code} ${h.name}`, h.id));
    }
  });
}

// Sorting a table's rows by a column holding `data-sort-<key>` values.
function wireSorting(table) {
  for (const button of table.querySelectorAll("th button[data-sort]")) {
    button.addEventListener("click", () => {
      const key = button.dataset.sort;
      const th = button.closest("th");
      const ascending = th.getAttribute("aria-sort") !== "ascending";
      table.querySelectorAll("th[aria-sort]").forEach((h) => h.setAttribute("aria-sort", "none"));
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      const body = table.tBodies[0];
      const value = (row) => Number(row.querySelector(`[data-sort-${key}]`)?.getAttribute(`data-sort-${key}`) ?? 0);
      [...body.rows].sort((a, b) => (ascending ? 1 : -1) * (value(a) - value(b))).forEach((r) => body.append(r));
    });
  }
}

// The session's end, announced five minutes before and when it comes.
function watchSession() {
  const ends = Date.parse(document.body.dataset.expiresAt || "");
  const banner = document.getElementById("session-warning");
  if (!ends || !banner) return;
  const tick = () => {
    const left = ends - Date.now();
    if (left <= 0) { banner.textContent = banner.dataset.ended; banner.hidden = false; return; }
    if (left <= 5 * 60 * 1000) {
      banner.textContent = banner.dataset.text.replace("{m}", String(Math.ceil(left / 60000)));
      banner.hidden = false;
    }
    setTimeout(tick, Math.min(30000, Math.max(1000, left - 5 * 60 * 1000)));
  };
  tick();
}

document.querySelectorAll("form[data-api]").forEach(wireApiForm);
document.querySelectorAll("form").forEach(wirePickers);
document.querySelectorAll("table.sortable").forEach(wireSorting);
watchSession();

// Exports: the API wants the CSRF header, which a plain link cannot send; fetched, then saved.
for (const link of document.querySelectorAll("a[data-export]")) {
  link.addEventListener("click", async (event) => {
    event.preventDefault();
    const res = await fetch(link.href, { headers: { "X-CSRF-Token": csrf(), "Accept-Language": lang() }, credentials: "same-origin" });
    if (!res.ok) { window.alert(`${res.status} ${await res.text()}`); return; }
    const url = URL.createObjectURL(await res.blob());
    const a = document.createElement("a");
    a.href = url;
    a.download = `audit-events.${link.dataset.export === "csv" ? "csv" : "ndjson"}`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  });
}
