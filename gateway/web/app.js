// The ticketing page: sign in, charge points, pick a concert and a date (which takes a place in
// its queue), pick seats on a live map, hold them, pay, and watch the reservation's status live.
// Everything goes through the gateway's /api on this origin; the session cookie signs in every
// call, the live status stream (EventSource) included. Errors show the problem's `detail`.
"use strict";

const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const REASONS = {
  insufficient_points: "Not enough points",
  hold_expired: "The hold expired before payment",
  expired: "The hold expired",
  cancelled: "Cancelled",
  hold_cancelled: "Cancelled",
  hold_released: "The seats were released",
  unknown_hold: "The hold was not found",
  payment_failed: "The payment failed",
};
const TERMINAL = new Set(["confirmed", "failed", "expired", "cancelled"]);

const state = {
  user: null,
  concert: null,
  schedule: null,
  queueToken: null,
  selected: new Set(),
  reservation: null,
  stream: null,
  timers: {},
};

class Problem extends Error {
  constructor(status, body) {
    super((body && body.detail) || `the request failed (${status})`);
    this.status = status;
    this.body = body;
  }
}

// One call to the API. A 503 or 429 with Retry-After is tried again a few times, as it says.
async function api(method, path, { body, headers = {}, retries = 5 } = {}) {
  for (let attempt = 0; ; attempt++) {
    const init = { method, headers: { ...headers }, credentials: "same-origin" };
    if (body !== undefined) {
      init.headers["content-type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const resp = await fetch(`/api${path}`, init);
    const text = await resp.text();
    const data = text ? JSON.parse(text) : null;
    if (resp.ok) return { data, headers: resp.headers, status: resp.status };
    const after = Number(resp.headers.get("retry-after"));
    if ((resp.status === 503 || resp.status === 429) && after >= 0 && attempt < retries) {
      await sleep(Math.min(Math.max(after, 0.5), 5) * 1000);
      continue;
    }
    throw new Problem(resp.status, data);
  }
}

// A command: sent with an Idempotency-Key, so a retry never takes effect twice.
const command = (path, body, headers = {}) =>
  api("POST", path, { body, headers: { "idempotency-key": crypto.randomUUID(), ...headers } });

function showError(e) {
  const box = $("error");
  if (!e) {
    box.hidden = true;
    box.textContent = "";
    return;
  }
  box.textContent = e.message || String(e);
  box.hidden = false;
}

// Runs a user action, showing its failure.
const action = (fn) => async (event) => {
  if (event) event.preventDefault();
  showError(null);
  try {
    await fn(event);
  } catch (e) {
    showError(e);
  }
};

function every(name, ms, fn) {
  clearInterval(state.timers[name]);
  const tick = () => fn().catch(() => {});
  tick();
  state.timers[name] = setInterval(tick, ms);
}
const stop = (name) => clearInterval(state.timers[name]);

// ---- session ----

async function start() {
  try {
    const { data } = await api("GET", "/session", { retries: 0 });
    signedIn(data);
  } catch {
    $("login").hidden = false;
  }
}

function signedIn(who) {
  state.user = who.user_id;
  $("login").hidden = true;
  $("app").hidden = false;
  $("who").hidden = false;
  $("user-name").textContent = who.user_id;
  refreshBalance();
  loadConcerts();
  every("tickets", 5000, loadTickets);
}

$("login-form").addEventListener("submit", action(async () => {
  const user = $("login-user").value.trim();
  const { data } = await api("POST", "/dev/login", { body: { user_id: user } });
  signedIn(data);
}));

$("logout").addEventListener("click", action(async () => {
  await api("DELETE", "/session");
  location.reload();
}));

// ---- wallet ----

async function refreshBalance() {
  const { data } = await api("GET", "/wallet");
  $("balance").textContent = data.balance;
}

$("charge-form").addEventListener("submit", action(async () => {
  const amount = Number($("charge-amount").value);
  const { data } = await command("/wallet/charge", { amount });
  $("balance").textContent = data.balance;
  $("charge-amount").value = "";
}));

// ---- catalog ----

function choose(list, button) {
  for (const b of list.querySelectorAll("button")) b.classList.remove("chosen");
  button.classList.add("chosen");
}

async function loadConcerts() {
  const { data } = await api("GET", "/concerts?upcoming=true&limit=100");
  const list = $("concert-list");
  list.replaceChildren(...data.map((c) => {
    const b = el("button", { "data-testid": "concert", "data-id": c.id, "data-title": c.title }, c.title);
    b.addEventListener("click", action(async () => {
      choose(list, b);
      await loadSchedules(c);
    }));
    return el("li", {}, b);
  }));
  if (!data.length) list.replaceChildren(el("li", { class: "muted" }, "No concerts on sale."));
}

const when = (iso) => new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });

async function loadSchedules(concert) {
  state.concert = concert;
  const { data } = await api("GET", `/concerts/${concert.id}/schedules`);
  $("schedules").hidden = false;
  $("schedules-title").textContent = `Dates of ${concert.title}`;
  const list = $("schedule-list");
  list.replaceChildren(...data.map((s) => {
    const b = el("button", { "data-testid": "schedule", "data-id": s.id },
      when(s.starts_at), el("br"), el("small", {}, `${s.available_seats} of ${s.total_seats} seats left`));
    b.addEventListener("click", action(async () => {
      choose(list, b);
      await joinQueue(s);
    }));
    return el("li", {}, b);
  }));
  if (!data.length) list.replaceChildren(el("li", { class: "muted" }, "No dates with seats left."));
}

// ---- queue ----

async function joinQueue(schedule) {
  state.schedule = schedule;
  state.selected.clear();
  $("seats").hidden = true;
  $("queue").hidden = false;
  $("queue-position").textContent = "Taking your place in line…";
  const { data } = await command(`/schedules/${schedule.id}/queue`, {});
  state.queueToken = data.token;
  showPlace(data);
  if (data.status !== "active") {
    every("queue", 1000, async () => {
      const { data: place } = await api("GET", `/queue/${encodeURIComponent(state.queueToken)}`);
      showPlace(place);
    });
  }
}

function showPlace(place) {
  const p = $("queue-position");
  p.dataset.status = place.status;
  if (place.status === "active") {
    stop("queue");
    p.textContent = "It's your turn: pick your seats.";
    $("seats").hidden = false;
    every("seats", 1000, loadSeats);
  } else if (place.status === "waiting") {
    p.textContent = `You are number ${place.position} in line.`;
  } else {
    stop("queue");
    p.textContent = `Your place in line has ${place.status === "expired" ? "expired" : "been used"}: choose the date again.`;
  }
}

// ---- seats ----

async function loadSeats() {
  const schedule = state.schedule;
  const { data, headers } = await api("GET", `/schedules/${schedule.id}/seats`, { retries: 0 });
  if (schedule !== state.schedule) return;
  $("stale").hidden = headers.get("x-stale") !== "true";
  const map = $("seat-map");
  const buttons = data.map((seat) => {
    const mine = state.selected.has(seat.seat_id);
    if (mine && seat.status !== "available") state.selected.delete(seat.seat_id);
    const b = el("button", {
      "data-testid": "seat",
      "data-id": seat.seat_id,
      "data-status": seat.status,
      "data-label": seat.label,
      class: `seat ${seat.status}${state.selected.has(seat.seat_id) ? " selected" : ""}`,
      title: `${seat.label}, ${seat.grade}, ${seat.price} points`,
    }, seat.label, el("small", {}, `${seat.grade} · ${seat.price}`));
    if (seat.status !== "available") b.disabled = true;
    b.addEventListener("click", () => {
      if (state.selected.has(seat.seat_id)) state.selected.delete(seat.seat_id);
      else if (state.selected.size < 10) state.selected.add(seat.seat_id);
      b.classList.toggle("selected", state.selected.has(seat.seat_id));
      showSelection();
    });
    return b;
  });
  map.replaceChildren(...buttons);
  showSelection();
}

function showSelection() {
  const n = state.selected.size;
  $("hold").disabled = n === 0;
  $("selection").textContent = n ? `${n} seat${n > 1 ? "s" : ""} selected` : "Pick seats on the map.";
}

$("hold").addEventListener("click", action(async () => {
  const seatIds = [...state.selected];
  const { data } = await command(`/schedules/${state.schedule.id}/holds`, { seat_ids: seatIds },
    { "queue-token": state.queueToken });
  state.selected.clear();
  showReservation(data);
  loadSeats().catch(() => {});
  loadTickets().catch(() => {});
}));

// ---- reservation ----

function showReservation(held) {
  state.reservation = { id: held.reservation_id, expiresAt: new Date(held.expires_at) };
  $("timeline").replaceChildren();
  $("reservation").hidden = false;
  $("reservation-summary").textContent =
    `${held.seat_ids.length} seat${held.seat_ids.length > 1 ? "s" : ""} for ${held.amount} points.`;
  showStatus({ status: "awaiting_payment" });
  every("countdown", 1000, async () => {
    const left = Math.max(0, Math.round((state.reservation.expiresAt - Date.now()) / 1000));
    $("countdown").textContent = left > 0
      ? `Held for you for ${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}.`
      : "The hold has run out.";
  });
  watch(held.reservation_id);
}

function showStatus(event) {
  const s = $("reservation-status");
  s.textContent = event.status;
  s.className = `status-${event.status}`;
  $("reservation-reason").textContent = event.reason ? REASONS[event.reason] || event.reason : "";
  const open = event.status === "awaiting_payment";
  $("pay").disabled = !open;
  $("cancel").disabled = !(open || event.status === "confirmed");
  if (TERMINAL.has(event.status) || event.status === "payment_pending") {
    stop("countdown");
    $("countdown").textContent = "";
  }
  if (TERMINAL.has(event.status)) {
    refreshBalance().catch(() => {});
    loadTickets().catch(() => {});
  }
  loadTimeline().catch(() => {});
}

// The saga's events on the bus, in order, with the time each step took.
async function loadTimeline() {
  const id = state.reservation && state.reservation.id;
  if (!id) return;
  const { data } = await api("GET", `/reservations/${id}/timeline`, { retries: 0 });
  if (!state.reservation || state.reservation.id !== id) return;
  $("timeline").replaceChildren(...data.map((step) =>
    el("li", { "data-type": step.type },
      el("code", {}, step.type), ` from ${step.source}`,
      step.after_ms === null ? "" : el("span", { class: "muted" }, ` +${step.after_ms} ms`))));
}

// The live status, as server-sent events; the session cookie signs the stream in. A stream
// refused (the reservation not known yet) or cut is opened again.
function watch(id) {
  if (state.stream) state.stream.close();
  const stream = new EventSource(`/api/reservations/${id}/events`);
  state.stream = stream;
  let ended = false;
  stream.addEventListener("status", (e) => {
    const event = JSON.parse(e.data);
    if (!state.reservation || event.id !== state.reservation.id) return;
    showStatus(event);
    if (TERMINAL.has(event.status)) {
      ended = true;
      stream.close();
    }
  });
  stream.addEventListener("error", () => {
    if (ended || state.stream !== stream) return;
    if (stream.readyState === EventSource.CLOSED) setTimeout(() => state.stream === stream && watch(id), 1000);
  });
}

$("pay").addEventListener("click", action(async () => {
  $("pay").disabled = true;
  try {
    await command(`/reservations/${state.reservation.id}/payment`, {});
  } catch (e) {
    $("pay").disabled = false;
    throw e;
  }
}));

$("cancel").addEventListener("click", action(async () => {
  await command(`/reservations/${state.reservation.id}/cancel`, {});
}));

// ---- my reservations ----

async function loadTickets() {
  const { data } = await api("GET", "/reservations?limit=20", { retries: 0 });
  const list = $("ticket-list");
  list.replaceChildren(...data.map((r) => {
    const seats = (r.seats || []).map((s) => s.label || s.seat_id.slice(0, 8)).join(", ");
    const title = r.concert_title || "A concert";
    const date = r.starts_at ? when(r.starts_at) : "";
    return el("li", { "data-testid": "ticket", "data-id": r.id },
      `${title}, ${date}: ${seats} — `,
      el("span", { class: `status-${r.status}` }, r.status),
      r.reason ? ` (${REASONS[r.reason] || r.reason})` : "");
  }));
  if (!data.length) list.replaceChildren(el("li", { class: "muted" }, "None yet."));
}

start();
