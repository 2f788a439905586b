// Convex values <-> their JSON wire form ($integer, $bytes, $float), as the official
// client encodes them (its browser bundle does not export these helpers).

function toBase64(bytes) {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

function fromBase64(text) {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

function float(x) {
  const buf = new DataView(new ArrayBuffer(8));
  buf.setFloat64(0, x, true);
  return { $float: toBase64(new Uint8Array(buf.buffer)) };
}

/** A Convex value as JSON (int64 and bytes tagged, NaN/±Infinity/-0 as $float). */
export function convexToJson(value) {
  if (value === null || typeof value === "boolean" || typeof value === "string") return value;
  if (typeof value === "number") return Number.isFinite(value) && !Object.is(value, -0) ? value : float(value);
  if (typeof value === "bigint") {
    const buf = new DataView(new ArrayBuffer(8));
    buf.setBigInt64(0, value, true);
    return { $integer: toBase64(new Uint8Array(buf.buffer)) };
  }
  if (value instanceof ArrayBuffer) return { $bytes: toBase64(new Uint8Array(value)) };
  if (Array.isArray(value)) return value.map(convexToJson);
  if (typeof value === "object") {
    const out = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = convexToJson(v);
    return out;
  }
  throw new Error(`Not a Convex value: ${String(value)}`);
}

/** JSON in the wire form back to a Convex value. */
export function jsonToConvex(value) {
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map(jsonToConvex);
  const keys = Object.keys(value);
  if (keys.length === 1) {
    const [k] = keys;
    if (k === "$integer") return new DataView(fromBase64(value.$integer).buffer).getBigInt64(0, true);
    if (k === "$bytes") return fromBase64(value.$bytes).buffer;
    if (k === "$float") return new DataView(fromBase64(value.$float).buffer).getFloat64(0, true);
  }
  const out = {};
  for (const [k, v] of Object.entries(value)) out[k] = jsonToConvex(v);
  return out;
}
