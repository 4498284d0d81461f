// Live updates from the gateway's event stream (GET /api/v1/stream,
// Server-Sent Events). EventSource cannot send a bearer header, so each
// connection first gets a short-lived single-use ticket; a reconnect gets a
// new one and names the last event seen, so nothing published meanwhile is
// missed. Views subscribe with onEvent(); "reset" means reload everything.

import { api } from "./api.js";

// The bus's event types a view may care about; the gateway sends each role
// only those it may see.
const TYPES = [
  "session.checked_in", "session.started", "session.vitals_alert", "session.completed", "session.aborted",
  "appointment.scheduled", "appointment.rescheduled", "appointment.cancelled", "appointment.no_show",
  "course.booked", "patient.risk_flagged", "invoice.issued", "payment.received", "invoice.paid",
  "invoice.overdue", "refund.issued", "reset",
];
const MAX_WAIT_MS = 30000;

const listeners = new Set();
let source = null;
let lastEventId = null;
let failures = 0;
let timer = null;
let stopped = true;

export function onEvent(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function setStatus(text, state) {
  const badge = document.getElementById("live");
  badge.textContent = text;
  badge.dataset.state = state;
}

export function startLive() {
  stopped = false;
  connect();
}

export function stopLive() {
  stopped = true;
  clearTimeout(timer);
  if (source) source.close();
  source = null;
  setStatus("Offline", "off");
}

async function connect() {
  if (stopped) return;
  let ticket;
  try {
    ticket = (await api("POST", "/stream/tickets")).ticket;
  } catch (error) {
    return later();
  }
  const url = new URL("/api/v1/stream", location.origin);
  url.searchParams.set("ticket", ticket);
  if (lastEventId) url.searchParams.set("last_event_id", lastEventId);
  source = new EventSource(url);
  source.onopen = () => {
    failures = 0;
    setStatus("Live", "on");
  };
  // A ticket is good for one connection: rather than let EventSource retry
  // with the spent one, start again with a fresh ticket.
  source.onerror = () => {
    source.close();
    source = null;
    later();
  };
  for (const type of TYPES) {
    source.addEventListener(type, (message) => {
      // A reset comes with an empty cursor: what follows is live from now.
      if (type === "reset") lastEventId = message.lastEventId || null;
      else if (message.lastEventId) lastEventId = message.lastEventId;
      let data = {};
      try { data = JSON.parse(message.data || "{}"); } catch (error) { data = {}; }
      for (const listener of listeners) listener(type, data);
    });
  }
}

function later() {
  if (stopped) return;
  failures += 1;
  setStatus("Reconnecting…", "retry");
  const wait = Math.min(MAX_WAIT_MS, 500 * 2 ** Math.min(failures, 6));
  clearTimeout(timer);
  timer = setTimeout(connect, wait);
}
