// The hall staff member's signing key: ECDSA P-256 made by WebCrypto in this browser, its
// private half not extractable, kept in IndexedDB. The server only ever sees the public half.

const DB = "crossprov-device-keys";
const STORE = "keys";

function database() {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open(DB, 1);
    open.onupgradeneeded = () => open.result.createObjectStore(STORE);
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });
}

async function inStore(mode, act) {
  const db = await database();
  return new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, mode);
    const req = act(tx.objectStore(STORE));
    tx.oncomplete = () => resolve(req.result);
    tx.onerror = () => reject(tx.error);
  });
}

/** This browser's key for `username` at `hall`: {kid, keys} or undefined. */
export function loadKey(username, hall) {
  return inStore("readonly", (s) => s.get(`${hall}/${username}`));
}

export function saveKey(username, hall, entry) {
  return inStore("readwrite", (s) => s.put(entry, `${hall}/${username}`));
}

const b64url = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const utf8 = (text) => new TextEncoder().encode(text);

/** A new key pair and its kid; nothing is stored until the server took the public half. */
export async function makeKey(username) {
  const keys = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
  const spki = await crypto.subtle.exportKey("spki", keys.publicKey);
  const lines = b64url(spki).replace(/-/g, "+").replace(/_/g, "/");
  const padded = lines + "=".repeat((4 - (lines.length % 4)) % 4);
  const pem = `-----BEGIN PUBLIC KEY-----\n${padded.match(/.{1,64}/g).join("\n")}\n-----END PUBLIC KEY-----\n`;
  const stamp = new Date().toISOString().slice(0, 10).replace(/-/g, "");
  const random = b64url(crypto.getRandomValues(new Uint8Array(4))).toLowerCase().replace(/[^a-z0-9]/g, "x");
  const kid = `dev-${username}-${stamp}-${random}`.slice(0, 64);
  return { kid, keys, pem };
}

/** The compact ES256 JWS of `payload`; WebCrypto's ECDSA signature is already r‖s, as JWS wants. */
export async function signJws(entry, payload) {
  const header = { alg: "ES256", kid: entry.kid, typ: "JWT" };
  const input = `${b64url(utf8(JSON.stringify(header)))}.${b64url(utf8(JSON.stringify(payload)))}`;
  const signature = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, entry.keys.privateKey, utf8(input));
  return `${input}.${b64url(signature)}`;
}
