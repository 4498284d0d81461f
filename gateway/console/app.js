// The console's entry: sign-in, then one view per area, chosen by the URL's
// hash (#/desk, #/board, #/session/<id>, #/billing).

import { useToken } from "./api.js";
import { currentSignIn, finishSignIn, keepToken, signOut, startSignIn } from "./auth.js";
import { startLive, stopLive } from "./live.js";
import { h, input, field } from "./ui.js";
import { renderDesk } from "./desk.js";
import { renderBoard } from "./board.js";
import { renderSession } from "./session.js";
import { renderBilling } from "./billing.js";

const VIEWS = [
  [/^#\/desk$/, renderDesk, "Front desk"],
  [/^#\/board$/, renderBoard, "Day board"],
  [/^#\/session\/([\w-]+)$/, renderSession, "Session"],
  [/^#\/billing$/, renderBilling, "Billing"],
];

const main = () => document.getElementById("main");
let config = null;
let cleanup = null;
let routing = false;

async function boot() {
  document.getElementById("skip").addEventListener("click", (event) => {
    event.preventDefault();
    main().focus();
  });
  document.getElementById("sign-out").addEventListener("click", () => {
    signOut();
    stopLive();
    showSignIn("You are signed out.");
  });
  config = await (await fetch("config.json", { cache: "no-store" })).json();
  if (config.oidc) {
    try {
      // On return from the provider the URL already names the view again.
      await finishSignIn(config.oidc);
    } catch (error) {
      return showSignIn(error.message);
    }
  }
  const signedIn = currentSignIn();
  if (!signedIn) return showSignIn();
  enter(signedIn);
}

function enter(signedIn) {
  useToken(signedIn.accessToken, () => {
    signOut();
    stopLive();
    showSignIn("Your sign-in has ended. Sign in again to carry on.");
  });
  document.getElementById("who").textContent = signedIn.user;
  document.getElementById("nav").hidden = false;
  document.getElementById("sign-out").hidden = false;
  startLive();
  if (!routing) window.addEventListener("hashchange", route);
  routing = true;
  if (!location.hash || location.hash === "#") location.hash = "#/board";
  else route();
}

let shown = 0;

async function route() {
  if (cleanup) cleanup();
  cleanup = null;
  const mine = ++shown;
  const focusBefore = document.activeElement;
  const hash = location.hash;
  for (const [pattern, render, title] of VIEWS) {
    const match = pattern.exec(hash);
    if (!match) continue;
    document.title = `${title} · Staff console`;
    for (const link of document.querySelectorAll("#nav a")) {
      if (hash.startsWith(link.getAttribute("href"))) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    const root = main();
    root.replaceChildren();
    const stop = await render(root, { config, zone: config.clinic_time_zone, params: match.slice(1) });
    // Another view was asked for while this one loaded: it has the screen.
    if (mine !== shown) {
      if (stop) stop();
      return;
    }
    cleanup = stop || null;
    // A new view starts at its heading, for screen readers and the keyboard,
    // unless the user has moved on while it loaded.
    const heading = root.querySelector("h1");
    const unmoved = document.activeElement === focusBefore || document.activeElement === document.body;
    if (heading && unmoved && !root.contains(document.activeElement)) {
      heading.tabIndex = -1;
      heading.focus();
    }
    return;
  }
  location.hash = "#/board";
}

function showSignIn(message) {
  document.getElementById("nav").hidden = true;
  document.getElementById("sign-out").hidden = true;
  document.getElementById("who").textContent = "";
  const root = main();
  const heading = h("h1", { tabindex: "-1" }, "Sign in");
  const parts = [heading];
  if (message) parts.push(h("p", { class: "problem", role: "alert" }, message));
  if (config && config.oidc) {
    parts.push(h("p", {}, "Staff sign in with the clinic's account."),
      h("button", { type: "button", class: "primary", id: "sign-in",
                    onclick: () => startSignIn(config.oidc, location.hash || "#/board") },
        "Sign in with the clinic's account"));
  } else if (config && config.development_tokens) {
    const token = input("token", { type: "password", autocomplete: "off", required: true });
    parts.push(h("form", { onsubmit: (event) => {
      event.preventDefault();
      keepToken(token.value.trim(), null, { name: "development token" });
      enter(currentSignIn());
    } }, field("Development bearer token", token, "Set by bin/run-clinic, e.g. dev-front-desk"),
    h("button", { type: "submit", class: "primary" }, "Sign in")));
  } else {
    parts.push(h("p", {}, "No sign-in is configured for the console: set CONSOLE_OIDC_CLIENT_ID and OIDC_ISSUER."));
  }
  root.replaceChildren(...parts);
  heading.focus();
}

boot();
