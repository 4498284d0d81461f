// Billing: the open invoices (issued or partly paid) with their balances,
// and a payment recorded against one of them.

import { api, newKey } from "./api.js";
import { onEvent } from "./live.js";
import { announce, dateIn, field, formData, h, input, money, problemBox, select, showErrors, toCents, words }
  from "./ui.js";

const OPEN = ["issued", "partially_paid"];
const METHODS = [["card", "Card"], ["cash", "Cash"], ["insurance", "Insurance"]];

export async function renderBilling(root, { zone }) {
  const problem = problemBox();
  const list = h("div", {});
  const paying = h("div", {});
  root.append(h("h1", {}, "Billing"),
    h("section", { "aria-labelledby": "open-heading", class: "card" },
      h("h2", { id: "open-heading" }, "Open invoices"), problem, list), paying);
  const names = new Map();

  async function load() {
    try {
      const invoices = [];
      for (const status of OPEN) {
        invoices.push(...(await api("GET", "/invoices", { query: { status, limit: 100 } })).items);
      }
      invoices.sort((a, b) => String(a.due_date).localeCompare(String(b.due_date)));
      await Promise.all([...new Set(invoices.map((i) => i.patient_id))].filter((id) => !names.has(id))
        .map(async (id) => {
          const patient = await api("GET", `/patients/${id}`).catch(() => null);
          names.set(id, patient ? `${patient.given_name} ${patient.family_name} (${patient.mrn})` : id);
        }));
      problem.replaceChildren();
      list.replaceChildren(invoices.length ? table(invoices) : h("p", {}, "No open invoices."));
    } catch (error) {
      problem.replaceChildren(h("p", {}, error.message));
    }
  }

  function table(invoices) {
    return h("table", {},
      h("caption", { class: "visually-hidden" }, "Open invoices, soonest due first"),
      h("thead", {}, h("tr", {}, ["Invoice", "Patient", "Due", "Total", "Paid", "Balance", "Status", ""]
        .map((label) => h("th", { scope: "col" }, label)))),
      h("tbody", {}, invoices.map((invoice) => h("tr", { "data-invoice": invoice.number },
        h("th", { scope: "row" }, invoice.number), h("td", {}, names.get(invoice.patient_id)),
        h("td", {}, invoice.due_date), h("td", { class: "num" }, money(invoice.total_cents, invoice.currency)),
        h("td", { class: "num" }, money(invoice.paid_cents, invoice.currency)),
        h("td", { class: "num" }, money(invoice.balance_cents, invoice.currency)),
        h("td", {}, words(invoice.status)),
        h("td", {}, h("button", { type: "button", onclick: () => payForm(invoice) },
          "Record payment", h("span", { class: "visually-hidden" }, ` for ${invoice.number}`)))))));
  }

  function payForm(invoice) {
    const summary = problemBox();
    const done = h("div", { class: "done", role: "status", tabindex: "-1" });
    const heading = h("h2", { id: "pay-heading", tabindex: "-1" }, `Payment for ${invoice.number}`);
    const amount = input("amount", { inputmode: "decimal", autocomplete: "off", required: true,
                                     value: (invoice.balance_cents / 100).toFixed(2) });
    let key = newKey();
    const form = h("form", { novalidate: true, "aria-labelledby": "pay-heading" },
      h("div", { class: "grid" },
        field(`Amount (${invoice.currency})`, amount, `Balance ${money(invoice.balance_cents, invoice.currency)}`),
        field("Method", select("method", METHODS)),
        field("Reference", input("reference", { autocomplete: "off" }), "The card processor's or insurer's reference")),
      summary,
      h("button", { type: "submit", class: "primary" }, "Record payment"));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const data = formData(form);
      const cents = toCents(data.amount);
      if (cents === null || cents <= 0) {
        showErrors(form, summary, { detail: "Give the amount in the invoice's currency, e.g. 120.00",
                                    errors: [{ field: "amount", message: "an amount such as 120.00" }] });
        return;
      }
      try {
        const { payment } = await api("POST", `/invoices/${invoice.invoice_id}/payments`, { key, body: {
          amount_cents: cents, method: data.method, ...(data.reference ? { reference: data.reference } : {}) } });
        key = newKey();
        showErrors(form, summary, null);
        form.hidden = true;
        done.replaceChildren(h("p", {}, `Recorded ${money(payment.amount_cents, payment.currency)} by `
          + `${words(payment.method)} on ${invoice.number} (${dateIn(zone, payment.received_at)}).`));
        done.focus();
        announce(`Payment recorded on ${invoice.number}`);
        await load();
      } catch (error) {
        showErrors(form, summary, error.problem);
      }
    });
    paying.replaceChildren(h("section", { "aria-labelledby": "pay-heading", class: "card" }, heading, form, done));
    heading.focus();
  }

  await load();
  return onEvent((type) => {
    if (type === "reset" || /^(invoice|payment|refund)\./.test(type)) load();
  });
}
