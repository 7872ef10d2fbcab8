/**
 * A plain Headers class for the bundled Connect code (scripts/write-bundle.mjs puts it in place of the
 * global one in @connectrpc's modules only): Node's global Headers loads all of undici on first
 * use, 20–50 ms of every command's start-up, for a map of header names to values. Behaves as the
 * Fetch standard's Headers for what Connect does with it: case-insensitive names, values trimmed,
 * `append` joining with ", " (Set-Cookie kept apart), iteration sorted by name.
 */
const trim = (v) => String(v).replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, "");

export class Headers {
  #map = new Map();

  constructor(init) {
    if (init == null) return;
    if (typeof init[Symbol.iterator] === "function") {
      for (const pair of init) {
        const [name, value, ...rest] = pair;
        if (rest.length > 0 || pair.length !== 2)
          throw new TypeError("Headers: each pair must be [name, value]");
        this.append(name, value);
      }
    } else if (typeof init === "object") {
      for (const name of Object.keys(init)) this.append(name, init[name]);
    } else {
      throw new TypeError("Headers: init must be an object or iterable");
    }
  }

  append(name, value) {
    const key = String(name).toLowerCase();
    const values = this.#map.get(key);
    if (values) values.push(trim(value));
    else this.#map.set(key, [trim(value)]);
  }

  set(name, value) {
    this.#map.set(String(name).toLowerCase(), [trim(value)]);
  }

  delete(name) {
    this.#map.delete(String(name).toLowerCase());
  }

  get(name) {
    const values = this.#map.get(String(name).toLowerCase());
    return values === undefined ? null : values.join(", ");
  }

  has(name) {
    return this.#map.has(String(name).toLowerCase());
  }

  getSetCookie() {
    return [...(this.#map.get("set-cookie") ?? [])];
  }

  forEach(callback, thisArg) {
    for (const [name, value] of this) callback.call(thisArg, value, name, this);
  }

  *entries() {
    for (const name of [...this.#map.keys()].sort()) {
      if (name === "set-cookie") for (const v of this.#map.get(name)) yield [name, v];
      else yield [name, this.get(name)];
    }
  }

  *keys() {
    for (const [name] of this) yield name;
  }

  *values() {
    for (const [, value] of this) yield value;
  }

  [Symbol.iterator]() {
    return this.entries();
  }
}
