/* The crew page's model: what stations and alerts say, and how urgent each station is; no DOM, no clock. */
"use strict";

var CrewModel = (function () {
  var PREFIX = "paystation/v1";
  var RANKS = ["lost", "critical", "out_of_service", "offline", "warning", "healthy"];
  var IMPACTS = ["none", "notice", "no_card_payment", "payment_method_unavailable", "out_of_service"];
  var STATES = ["online", "lost", "offline"];
  var STATION_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
  var USER_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
  var ALERT_ID = /^[a-z0-9-]{1,64}$/;
  var TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2})$/;
  var SEVERITIES = ["critical", "warning", "info"];
  /* What the station's Text200 refuses: C0 controls (line breaks too), DEL, C1 and the bidi controls. */
  var UNSAFE_TEXT = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;
  /* The codes of docs/mqtt.md's reply code table: each has its text (crew-texts.js "code.*"). */
  var REPLY_CODES = ["ok", "bad_json", "bad_arguments", "unknown_command", "too_large", "retained", "busy", "wrong_mode",
    "unavailable", "interrupted", "storage", "terminal_failed", "failed", "failed_before", "not_supported"];

  /* A map keyed by what arrives (station ids, components, alert ids): no inherited keys such as "constructor". */
  function dict() { return Object.create(null); }

  function has(map, key) { return Object.prototype.hasOwnProperty.call(map, key); }

  function isObject(value) { return value !== null && typeof value === "object" && !Array.isArray(value); }

  function text(value) { return typeof value === "string" ? value : ""; }

  function oneOf(value, allowed) { return typeof value === "string" && allowed.indexOf(value) >= 0 ? value : ""; }

  function number(value) { return typeof value === "number" && isFinite(value) ? value : null; }

  /* A time as stations and the bridge write it (ISO 8601 with a zone), else null: shown as unknown. */
  function time(value) {
    if (typeof value !== "string" || !TIME.test(value)) { return null; }
    var date = new Date(value);
    return isNaN(date.getTime()) ? null : date;
  }

  function parse(body) {
    try { return JSON.parse(body); } catch (error) { return null; }
  }

  /* A note the station takes: 1 to 200 characters, none of them a control; "" when it is fine, else the text key. */
  function noteProblem(note, optional) {
    var length = Array.from(note).length;
    if (UNSAFE_TEXT.test(note)) { return "note.controls"; }
    if ((length < 1 && !optional) || length > 200) { return "fixed.need_note"; }
    return "";
  }

  function newStation(id) {
    return {id: id, status: null, onlineBoot: -1, faults: dict(), telemetry: null, seen: null};
  }

  function cleanStatus(data, now, previous) {
    var state = oneOf(data.state, STATES);
    var boot = number(data.boot);
    var since = time(data.ts);
    if (!since && state === "lost") {  /* a will has no time: when the page learnt it (kept while it stays lost) */
      since = previous && previous.state === "lost" && previous.boot === boot ? previous.since : now;
    }
    return {state: state, boot: boot, zone: text(data.zone), since: since};
  }

  function cleanFault(data) {
    return {active: data.active === true, code: text(data.code), severity: oneOf(data.severity, SEVERITIES),
      since: time(data.since), message: text(data.message), impact: oneOf(data.parker_impact, IMPACTS)};
  }

  function cleanTelemetry(data) {
    var link = isObject(data.link) ? text(data.link.state) : "";
    return {terminal: text(data.terminal), link: link, outbox: number(data.outbox_depth), temp: number(data.cpu_temp_c),
      ts: time(data.ts)};
  }

  /* A retained alert as the page uses it, every field checked; null when it is no alert at all. */
  function cleanAlert(id, data) {
    if (!isObject(data)) { return null; }
    var stations = Array.isArray(data.stations) ? data.stations.filter(function (s) {
      return typeof s === "string" && STATION_ID.test(s);
    }) : [];
    return {id: id, acked: data.state === "acknowledged", title: text(data.title) || id, stations: stations,
      severity: oneOf(data.severity, SEVERITIES), since: time(data.since), opened: text(data.opened), group: text(data.group),
      message: text(data.message), ackedBy: text(data.acked_by), ackedAt: time(data.acked_at)};
  }

  /* What each kind of station topic changes (``data`` null: the retained message was removed). */
  var HANDLERS = dict();
  HANDLERS.status = function (st, rest, data, now) {
    if (rest.length !== 0) { return false; }
    if (data === null) { st.status = null; return true; }
    var status = cleanStatus(data, now, st.status);
    if (status.state === "online" && status.boot !== null) { st.onlineBoot = Math.max(st.onlineBoot, status.boot); }
    if (status.state === "lost" && status.boot !== null && status.boot < st.onlineBoot) { return false; }  /* a stale will */
    st.status = status;
    return true;
  };
  HANDLERS.fault = function (st, rest, data) {
    if (rest.length !== 1) { return false; }
    if (data === null) { delete st.faults[rest[0]]; } else { st.faults[rest[0]] = cleanFault(data); }
    return true;
  };
  HANDLERS.telemetry = function (st, rest, data, now) {
    if (rest.length !== 0) { return false; }
    st.telemetry = data === null ? null : cleanTelemetry(data);
    st.seen = data === null ? null : now;
    return true;
  };

  /* Apply one station message (``kind`` the topic level after the station, ``rest`` the levels after it, ``body`` the
     payload's text, "" for a removed retained message): false if ignored. */
  function apply(st, kind, rest, body, now) {
    var data = body === "" ? null : parse(body);
    if (!has(HANDLERS, kind) || (data !== null && !isObject(data)) || (data === null && body !== "")) { return false; }
    return HANDLERS[kind](st, rest, data, now);
  }

  function isEmpty(st) { return st.status === null && st.telemetry === null && Object.keys(st.faults).length === 0; }

  function activeFaults(st) {
    return Object.keys(st.faults).sort().map(function (component) {
      return {component: component, fault: st.faults[component]};
    }).filter(function (item) { return item.fault.active; });
  }

  function rankOf(st) {
    var active = activeFaults(st);
    var any = function (test) { return active.some(function (item) { return test(item.fault); }); };
    var stateName = st.status ? st.status.state : "";
    if (stateName === "lost") { return "lost"; }
    if (any(function (f) { return f.severity === "critical"; })) { return "critical"; }
    if (any(function (f) { return f.impact === "out_of_service"; })) { return "out_of_service"; }
    if (stateName === "offline") { return "offline"; }
    if (any(function (f) { return f.severity === "warning"; })) { return "warning"; }
    return "healthy";
  }

  function earliestSince(st) {
    var times = activeFaults(st).map(function (item) { return item.fault.since; }).filter(Boolean).map(function (d) {
      return d.getTime();
    }).sort(function (a, b) { return a - b; });
    return times.length ? times[0] : Infinity;
  }

  function sortStations(stations) {
    return Object.keys(stations).map(function (id) { return stations[id]; }).sort(function (a, b) {
      var byRank = RANKS.indexOf(rankOf(a)) - RANKS.indexOf(rankOf(b));
      if (byRank) { return byRank; }
      var sa = earliestSince(a), sb = earliestSince(b);
      if (sa !== sb) { return sa < sb ? -1 : 1; }
      return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
    });
  }

  function severityRank(alert) {
    return alert.severity ? SEVERITIES.indexOf(alert.severity) : SEVERITIES.length;
  }

  function sortAlerts(alerts) {
    return Object.keys(alerts).sort(function (a, b) {
      var x = alerts[a], y = alerts[b];
      var byState = Number(x.acked) - Number(y.acked);
      var bySeverity = severityRank(x) - severityRank(y);
      return byState || bySeverity || (x.opened < y.opened ? -1 : x.opened > y.opened ? 1 : 0) || (a < b ? -1 : 1);
    });
  }

  /* What a reply says, as [text key, params] pairs: its code's text, then its data in words for the page's commands. */
  var FACTS = dict();
  FACTS.service_start = FACTS.service_end = function (reply) {
    var mode = text(reply.mode);
    return mode === "service" ? [["reply.service_on"]] : mode === "normal" ? [["reply.service_off"]] :
      mode ? [["reply.mode", {mode: mode}]] : [];
  };
  FACTS.terminal_status = function (reply) {
    var facts = [];
    if (typeof reply.ready === "boolean") { facts.push([reply.ready ? "reply.terminal_ready" : "reply.terminal_not_ready"]); }
    if (/^[0-9A-Fa-f]{1,8}$/.test(text(reply.status))) { facts.push(["reply.terminal_status", {status: reply.status}]); }
    if (text(reply.version)) { facts.push(["reply.terminal_version", {version: reply.version}]); }
    return facts;
  };
  FACTS.fixed = function (reply) {
    var facts = [];
    var recorded = time(reply.recorded_at);
    if (recorded) { facts.push(["reply.note_recorded", {time: recorded}]); }
    if (typeof reply.fault_active === "boolean") { facts.push([reply.fault_active ? "fixed.active" : "fixed.cleared"]); }
    return facts;
  };
  FACTS.restart = function () { return []; };

  function replyFacts(command, reply) {
    return reply.ok === true && has(FACTS, command) ? FACTS[command](reply) : [];
  }

  /* The text key of a reply's code ("code.unknown" for a code the page does not know). */
  function codeKey(reply) {
    return REPLY_CODES.indexOf(reply.code) >= 0 ? "code." + reply.code : "code.unknown";
  }

  return {
    PREFIX: PREFIX, RANKS: RANKS, STATION_ID: STATION_ID, USER_NAME: USER_NAME, ALERT_ID: ALERT_ID, REPLY_CODES: REPLY_CODES,
    dict: dict, has: has, isObject: isObject, text: text, time: time, parse: parse, noteProblem: noteProblem,
    newStation: newStation, apply: apply, isEmpty: isEmpty, cleanAlert: cleanAlert, activeFaults: activeFaults,
    rankOf: rankOf, sortStations: sortStations, sortAlerts: sortAlerts, replyFacts: replyFacts, codeKey: codeKey
  };
}());
