// Front desk: register a patient; find a patient and book their induction
// course on a chair with a clinician, from the free start times of a day.

import { api, newKey } from "./api.js";
import { announce, field, formData, h, input, problemBox, select, showErrors, timeIn, dateIn, words } from "./ui.js";

const SEXES = [["", "Choose…"], ["female", "Female"], ["male", "Male"], ["other", "Other"], ["unknown", "Unknown"]];
const CONDITIONS = [["", "Choose…"], ["treatment_resistant_depression", "Treatment-resistant depression"],
  ["major_depressive_disorder", "Major depressive disorder"], ["bipolar_depression", "Bipolar depression"],
  ["ptsd", "PTSD"], ["generalized_anxiety", "Generalized anxiety"],
  ["obsessive_compulsive_disorder", "Obsessive-compulsive disorder"], ["chronic_pain", "Chronic pain"],
  ["other", "Other"]];

export async function renderDesk(root, { zone }) {
  root.append(h("h1", {}, "Front desk"), registration(zone), booking(zone));
}

function registration(zone) {
  const summary = problemBox();
  const done = h("div", { class: "done", role: "status", tabindex: "-1" });
  let key = newKey();
  const form = h("form", { novalidate: true, "aria-labelledby": "register-heading" },
    h("div", { class: "grid" },
      field("Given name", input("given_name", { required: true, autocomplete: "off" })),
      field("Family name", input("family_name", { required: true, autocomplete: "off" })),
      field("Date of birth", input("date_of_birth", { type: "date", required: true })),
      field("Sex", select("sex", SEXES, { required: true })),
      field("Mobile phone", input("phone", { type: "tel", autocomplete: "off" }), "International format, e.g. +14155550123"),
      field("Email", input("email", { type: "email", autocomplete: "off" })),
      field("Time zone", input("time_zone", { value: zone, autocomplete: "off" })),
      field("Primary condition", select("primary_condition", CONDITIONS, { required: true })),
      field("Weight (kg)", input("weight_kg", { inputmode: "decimal", autocomplete: "off" })),
      field("Diagnosis codes", input("diagnosis_codes", { autocomplete: "off" }), "ICD-10, comma separated, e.g. F33.2")),
    summary,
    h("button", { type: "submit", class: "primary" }, "Register patient"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = formData(form);
    if (data.weight_kg) data.weight_kg = Number(data.weight_kg);
    data.diagnosis_codes = (data.diagnosis_codes || "").split(",").map((code) => code.trim()).filter(Boolean);
    try {
      const patient = await api("POST", "/patients", { body: data, key });
      key = newKey();
      showErrors(form, summary, null);
      form.reset();
      form.elements.namedItem("time_zone").value = zone;
      done.replaceChildren(h("p", {}, `Registered ${patient.given_name} ${patient.family_name}, MRN `,
        h("strong", { "data-mrn": patient.mrn }, patient.mrn), "."));
      done.dataset.patientId = patient.patient_id;
      done.focus();
      announce(`Registered ${patient.given_name} ${patient.family_name}, MRN ${patient.mrn}`);
    } catch (error) {
      showErrors(form, summary, error.problem);
    }
  });
  return h("section", { "aria-labelledby": "register-heading", class: "card" },
    h("h2", { id: "register-heading" }, "Register a patient"), form, done);
}

function booking(zone) {
  const summary = problemBox();
  const results = h("div", { class: "results" });
  const planArea = h("div", {});
  const search = h("form", { role: "search", "aria-label": "Find a patient" },
    field("Patient name or MRN", input("name", { autocomplete: "off", required: true })),
    h("button", { type: "submit" }, "Find patient"), summary);
  search.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = formData(search).name || "";
    const query = /^MRN/i.test(text) ? { mrn: text.toUpperCase() } : { name: text };
    try {
      const page = await api("GET", "/patients", { query: { ...query, limit: 10 } });
      showErrors(search, summary, null);
      results.replaceChildren(page.items.length
        ? h("ul", { class: "choices", "aria-label": "Patients found" }, page.items.map((patient) =>
          h("li", {}, h("button", { type: "button", onclick: () => choosePatient(patient, planArea, zone) },
            `${patient.given_name} ${patient.family_name} · ${patient.mrn} · born ${patient.date_of_birth}`))))
        : h("p", {}, "No patient found."));
      announce(`${page.items.length} patients found`);
    } catch (error) {
      showErrors(search, summary, error.problem);
    }
  });
  return h("section", { "aria-labelledby": "book-heading", class: "card" },
    h("h2", { id: "book-heading" }, "Book a course"), search, results, planArea);
}

async function choosePatient(patient, area, zone) {
  const heading = h("h3", { tabindex: "-1" }, `Course for ${patient.given_name} ${patient.family_name}`);
  const summary = problemBox();
  area.replaceChildren(heading, summary);
  heading.focus();
  let plans;
  let resources;
  try {
    [plans, resources] = await Promise.all([api("GET", `/patients/${patient.patient_id}/plans`),
                                            api("GET", "/resources")]);
  } catch (error) {
    summary.append(error.message);
    return;
  }
  const open = plans.items.filter((plan) => plan.status === "active");
  if (!open.length) {
    area.append(h("p", {}, "No treatment plan yet: a clinician creates one after approving the intake."));
    return;
  }
  const kind = (k) => resources.items.filter((r) => r.kind === k && r.active).map((r) => [r.resource_id, r.name]);
  const slots = h("div", {});
  const booked = h("div", { class: "done", role: "status", tabindex: "-1" });
  let key = newKey();
  const form = h("form", { novalidate: true },
    h("div", { class: "grid" },
      field("Treatment plan", select("plan_id", open.map((plan) => [plan.plan_id,
        `${words(plan.route)}, ${plan.induction_sessions} sessions`]))),
      field("Chair", select("chair_id", kind("chair"))),
      field("Clinician", select("clinician_id", kind("clinician"))),
      field("First session on", input("date", { type: "date", required: true }))),
    h("button", { type: "button", onclick: () => findTimes() }, "Find start times"),
    slots, summary);
  const findTimes = async () => {
    const data = formData(form);
    const plan = open.find((p) => p.plan_id === data.plan_id);
    try {
      const free = await api("GET", "/schedule/free-slots", { query: {
        date: data.date, route: plan.route, chair_id: data.chair_id, clinician_id: data.clinician_id } });
      showErrors(form, summary, null);
      if (!free.slots.length) {
        slots.replaceChildren(h("p", { role: "status" }, "No free start time that day; try another day."));
        return;
      }
      const choice = select("first_starts_at", free.slots.map((slot) => [slot.starts_at,
        `${timeIn(zone, slot.starts_at)}–${timeIn(zone, slot.ends_at)}`]));
      slots.replaceChildren(field("First session starts at", choice),
        h("button", { type: "submit", class: "primary" }, "Book course"));
      announce(`${free.slots.length} start times found`);
      choice.focus();
    } catch (error) {
      showErrors(form, summary, error.problem);
    }
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = formData(form);
    try {
      const course = await api("POST", `/plans/${data.plan_id}/course`, { key, body: {
        first_starts_at: data.first_starts_at, chair_id: data.chair_id, clinician_id: data.clinician_id } });
      key = newKey();
      showErrors(form, summary, null);
      booked.replaceChildren(h("p", {}, `Booked ${course.appointments.length} sessions:`),
        h("ol", { class: "booked" }, course.appointments.map((appointment) =>
          h("li", {}, `${dateIn(zone, appointment.starts_at)} ${timeIn(zone, appointment.starts_at)}`))));
      booked.focus();
      announce(`Course booked: ${course.appointments.length} sessions`);
    } catch (error) {
      showErrors(form, summary, error.problem);
    }
  });
  area.append(form, booked);
}
