// The day board: each chair's appointments for a clinic day with the state
// of their sessions, kept current from the live event stream.

import { api } from "./api.js";
import { onEvent } from "./live.js";
import { announce, field, h, input, problemBox, timeIn, today } from "./ui.js";

const STATES = {
  scheduled: "Booked", checked_in: "Checked in", in_progress: "In session", in_session: "In session",
  completed: "Completed", aborted: "Stopped early", no_show: "No-show", cancelled: "Cancelled",
};
// Events that change what the board shows.
const MOVES = /^(session|appointment|course)\./;

export async function renderBoard(root, { zone }) {
  const day = input("date", { type: "date", value: today(zone) });
  const problem = problemBox();
  const stamp = h("p", { class: "stamp" });
  const board = h("div", { class: "board", "aria-live": "off" });
  root.append(h("h1", {}, "Day board"),
    h("form", { class: "inline", onsubmit: (event) => { event.preventDefault(); load(); } },
      field("Clinic day", day), h("button", { type: "submit" }, "Show day")),
    problem, stamp, board);

  let pending = null;
  async function load() {
    try {
      const items = await wholeDay(day.value);
      problem.replaceChildren();
      // A live reload must not take a keyboard user's place on the board.
      const focused = document.activeElement && document.activeElement.closest
        ? document.activeElement.closest("[data-appointment]") : null;
      board.replaceChildren(...chairs(items, zone));
      const again = focused && board.querySelector(`[data-appointment="${focused.dataset.appointment}"] .open`);
      if (again) again.focus();
      stamp.textContent = `${items.length} appointments · updated ${timeIn(zone, new Date().toISOString())}`;
    } catch (error) {
      problem.replaceChildren(h("p", {}, error.message));
    }
  }
  await load();
  return onEvent((type, data) => {
    if (type === "session.vitals_alert") announce("Vitals alert on the board");
    if (!MOVES.test(type) && type !== "reset") return;
    // A burst of events (a course booked, a check-in) is one reload.
    clearTimeout(pending);
    pending = setTimeout(load, 250);
  });
}

async function wholeDay(date) {
  const items = [];
  for (let offset = 0; ; offset += 100) {
    const page = await api("GET", "/schedule", { query: { date, limit: 100, offset } });
    items.push(...page.items);
    if (!page.items.length || items.length >= page.total) return items;
  }
}

function chairs(items, zone) {
  const byChair = new Map();
  for (const item of items) {
    const name = item.chair || "Unassigned chair";
    if (!byChair.has(name)) byChair.set(name, []);
    byChair.get(name).push(item);
  }
  if (!byChair.size) return [h("p", {}, "Nothing booked on this day.")];
  return [...byChair.entries()].sort(([a], [b]) => a.localeCompare(b, undefined, { numeric: true }))
    .map(([chair, list]) => {
      const id = `chair-${chair.replace(/\W+/g, "-").toLowerCase()}`;
      return h("section", { class: "chair", "aria-labelledby": id },
        h("h2", { id }, chair),
        h("ol", { class: "slots" }, list.map((item) => slot(item, zone))));
    });
}

function slot(item, zone) {
  const state = item.session_status || item.status;
  const alerting = item.vitals_alerts > 0;
  return h("li", { class: `slot state-${state}${alerting ? " alerting" : ""}`, "data-appointment": item.appointment_id },
    h("p", { class: "when" }, `${timeIn(zone, item.starts_at)}–${timeIn(zone, item.ends_at)}`),
    h("p", { class: "who" }, item.patient_name || "Patient", " ", h("span", { class: "mrn" }, item.mrn || "")),
    h("p", { class: "meta" }, item.clinician || ""),
    h("p", { class: "state" }, h("span", { class: "badge" }, STATES[state] || state),
      alerting ? h("span", { class: "badge alert" }, `Vitals alert${item.vitals_alerts > 1 ? ` ×${item.vitals_alerts}` : ""}`) : null),
    item.session_id
      ? h("a", { href: `#/session/${item.session_id}`, class: "open" },
        "Open session", h("span", { class: "visually-hidden" }, ` of ${item.patient_name || "the patient"}`))
      : null);
}
