// Small DOM helpers shared by the console's views: building elements
// as nodes (nothing from the API is ever parsed as markup), forms
// with labels and error messages, times in the clinic's zone, money.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else if (name === "text") el.textContent = value;
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

let fieldCount = 0;

// A labelled input (or select) with a slot for its error message.
export function field(label, control, hint) {
  const id = control.id || `f${++fieldCount}`;
  control.id = id;
  const error = h("p", { class: "error", id: `${id}-error`, hidden: true });
  const described = [`${id}-error`];
  let hintEl = null;
  if (hint) {
    hintEl = h("p", { class: "hint", id: `${id}-hint` }, hint);
    described.push(`${id}-hint`);
  }
  control.setAttribute("aria-describedby", described.join(" "));
  return h("div", { class: "field" }, h("label", { for: id }, label), hintEl, control, error);
}

export function input(name, attrs = {}) {
  return h("input", { name, type: "text", ...attrs });
}

export function select(name, options, attrs = {}) {
  return h("select", { name, ...attrs },
    options.map(([value, label]) => h("option", { value }, label)));
}

// Clears a form's messages, then shows each {field, message} of a 422
// beside its control; what names no control goes to the summary.
export function showErrors(form, summary, problem) {
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  for (const el of form.querySelectorAll(".error")) { el.hidden = true; el.textContent = ""; }
  summary.replaceChildren();
  if (!problem) return;
  const unplaced = [];
  for (const error of problem.errors || []) {
    const name = String(error.field || "").split(".")[0];
    const control = name && form.elements.namedItem(name);
    if (control && control.id) {
      control.setAttribute("aria-invalid", "true");
      const slot = document.getElementById(`${control.id}-error`);
      slot.textContent = error.message;
      slot.hidden = false;
    } else {
      unplaced.push(`${error.field}: ${error.message}`);
    }
  }
  summary.append(h("p", {}, problem.detail || problem.title || "The request failed."));
  if (unplaced.length) summary.append(h("ul", {}, unplaced.map((text) => h("li", {}, text))));
  summary.focus();
}

export function problemBox() {
  return h("div", { class: "problem", role: "alert", tabindex: "-1" });
}

export function announce(text) {
  const region = document.getElementById("announcer");
  region.textContent = "";
  // A fresh text node after a tick is announced even when the text repeats.
  setTimeout(() => { region.textContent = text; }, 50);
}

export function timeIn(zone, iso) {
  if (!iso) return "";
  return new Intl.DateTimeFormat("en-GB", { timeZone: zone, hour: "2-digit", minute: "2-digit" })
    .format(new Date(iso));
}

export function dateIn(zone, iso) {
  if (!iso) return "";
  return new Intl.DateTimeFormat("en-CA", { timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit" })
    .format(new Date(iso));
}

export function today(zone) {
  return dateIn(zone, new Date().toISOString());
}

export function money(cents, currency = "USD") {
  return new Intl.NumberFormat("en-US", { style: "currency", currency }).format(cents / 100);
}

// "12.5" or "12.50" -> 1250; anything else -> null. No floating point.
export function toCents(text) {
  const match = /^\s*(\d{1,9})(?:\.(\d{1,2}))?\s*$/.exec(text || "");
  if (!match) return null;
  return Number(match[1]) * 100 + Number((match[2] || "0").padEnd(2, "0"));
}

export function words(code) {
  return String(code || "").replaceAll("_", " ");
}

export function formData(form) {
  const data = {};
  for (const [name, value] of new FormData(form).entries()) {
    if (String(value).trim() !== "") data[name] = String(value).trim();
  }
  return data;
}
