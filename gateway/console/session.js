// A session record for the clinician: the state, the vitals so far, a form
// to record a reading, and vitals alerts as they happen: from this form's
// answer and, live, from the event stream (a reading taken on another
// device raises the same alert here without a reload).

import { api, newKey } from "./api.js";
import { onEvent } from "./live.js";
import { announce, field, formData, h, input, problemBox, showErrors, timeIn, words } from "./ui.js";

const MEASURES = [["systolic", "Systolic (mmHg)"], ["diastolic", "Diastolic (mmHg)"],
  ["heart_rate", "Heart rate (/min)"], ["spo2", "SpO₂ (%)"], ["respiratory_rate", "Respiratory rate (/min)"]];
const MEASURE_NAMES = { systolic: "systolic", diastolic: "diastolic", heart_rate: "heart rate",
  spo2: "SpO₂", respiratory_rate: "respiratory rate" };

export async function renderSession(root, { zone, params: [sessionId] }) {
  const heading = h("h1", { tabindex: "-1" }, "Session");
  const facts = h("dl", { class: "facts" });
  const alerts = h("div", { class: "session-alerts", role: "alert", "aria-live": "assertive" });
  const table = h("div", {});
  const problem = problemBox();
  const shown = new Set();
  let record = null;
  let patient = null;
  root.append(heading, problem, alerts, facts,
    h("section", { "aria-labelledby": "vitals-heading", class: "card" },
      h("h2", { id: "vitals-heading" }, "Vitals"), table, vitalsForm()));

  function showAlerts(reading) {
    if (!reading.alerts || !reading.alerts.length || shown.has(reading.reading_id)) return;
    shown.add(reading.reading_id);
    const text = reading.alerts.map((alert) => `${MEASURE_NAMES[alert.measure] || words(alert.measure)} ${alert.value}`
      + ` (limit ${alert.threshold})`).join(", ");
    alerts.append(h("p", { class: "alert", "data-reading": reading.reading_id },
      h("strong", {}, "Vitals alert"), ` at ${timeIn(zone, reading.recorded_at)}: ${text}`));
  }

  async function load(announceNew = false) {
    try {
      record = await api("GET", `/sessions/${sessionId}`);
      problem.replaceChildren();
    } catch (error) {
      problem.replaceChildren(h("p", {}, error.message));
      return;
    }
    if (!patient) {
      patient = await api("GET", `/patients/${record.patient_id}`).catch(() => null);
    }
    const who = patient ? `${patient.given_name} ${patient.family_name}` : "Patient";
    heading.textContent = `${who} · session ${words(record.status)}`;
    facts.replaceChildren(...[
      ["Patient", patient ? `${who} (${patient.mrn})` : record.patient_id], ["Route", words(record.route)],
      ["Drug", words(record.drug)],
      ["Dose", record.dose_mg == null ? "not yet dosed" : `${record.dose_mg} mg`],
      ["Checked in", timeIn(zone, record.checked_in_at)], ["Started", timeIn(zone, record.started_at) || "not yet"],
    ].flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));
    table.replaceChildren(vitalsTable(record.vitals, zone));
    const before = shown.size;
    for (const reading of record.vitals) showAlerts(reading);
    if (announceNew && shown.size > before) announce("New vitals alert");
  }

  function vitalsForm() {
    const summary = problemBox();
    let key = newKey();
    const form = h("form", { novalidate: true, "aria-label": "Record vitals" },
      h("div", { class: "grid" }, MEASURES.map(([name, label]) =>
        field(label, input(name, { inputmode: "numeric", autocomplete: "off", required: true })))),
      summary, h("button", { type: "submit", class: "primary" }, "Record vitals"));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = Object.fromEntries(Object.entries(formData(form)).map(([name, value]) => [name, Number(value)]));
      try {
        const reading = await api("POST", `/sessions/${sessionId}/vitals`, { body, key });
        key = newKey();
        showErrors(form, summary, null);
        form.reset();
        announce("Vitals recorded");
        showAlerts(reading);
        await load();
      } catch (error) {
        showErrors(form, summary, error.problem);
      }
    });
    return form;
  }

  await load();
  heading.focus();
  return onEvent((type, data) => {
    if (type === "reset" || (data.session_id === sessionId && type.startsWith("session."))) load(true);
  });
}

function vitalsTable(vitals, zone) {
  if (!vitals.length) return h("p", {}, "No readings yet.");
  return h("table", {},
    h("caption", { class: "visually-hidden" }, "Vitals readings, oldest first"),
    h("thead", {}, h("tr", {}, ["Time", "BP (mmHg)", "Heart rate", "SpO₂", "Resp. rate", "Alerts"]
      .map((label) => h("th", { scope: "col" }, label)))),
    h("tbody", {}, vitals.map((reading) => h("tr", { class: reading.alerts.length ? "alerting" : "" },
      h("th", { scope: "row" }, timeIn(zone, reading.recorded_at)),
      h("td", {}, `${reading.systolic ?? "–"}/${reading.diastolic ?? "–"}`),
      h("td", {}, reading.heart_rate ?? "–"), h("td", {}, reading.spo2 ?? "–"),
      h("td", {}, reading.respiratory_rate ?? "–"),
      h("td", {}, reading.alerts.map((alert) => words(alert.code)).join(", "))))));
}
