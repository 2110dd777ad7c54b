/* The crew page's model: what stations and alerts say, and how urgent each station is; no DOM, no clock. */
"use strict";

var CrewModel = (function () {
  var PREFIX = "paystation/v1";
  var RANKS = ["lost", "critical", "out_of_service", "offline", "warning", "healthy"];
  var IMPACTS = ["none", "notice", "no_card_payment", "payment_method_unavailable", "out_of_service"];
  var STATION_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
  var USER_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
  var ALERT_ID = /^[a-z0-9-]{1,64}$/;
  var SEVERITY_ORDER = {critical: 0, warning: 1, info: 2};

  function isObject(value) { return value !== null && typeof value === "object" && !Array.isArray(value); }

  function text(value) { return typeof value === "string" ? value : ""; }

  function parse(body) {
    try { return JSON.parse(body); } catch (error) { return null; }
  }

  function newStation(id) {
    return {id: id, status: null, onlineBoot: -1, faults: {}, telemetry: null, seen: null};
  }

  /* What each kind of station topic changes; ``now`` is when the message arrived. */
  var HANDLERS = {
    status: function (st, rest, data, now) {
      if (rest.length !== 0) { return; }
      if (data.state === "online" && typeof data.boot === "number") { st.onlineBoot = Math.max(st.onlineBoot, data.boot); }
      if (data.state === "lost" && typeof data.boot === "number" && data.boot < st.onlineBoot) { return; }  /* a stale will */
      st.status = data;
    },
    fault: function (st, rest, data, now) {
      if (rest.length !== 1) { return; }
      st.faults[rest[0]] = data;
    },
    telemetry: function (st, rest, data, now) {
      if (rest.length !== 0) { return; }
      st.telemetry = data;
      st.seen = now;
    }
  };

  /* Apply one station message (``kind`` the topic level after the station, ``rest`` the levels after it): false if ignored. */
  function apply(st, kind, rest, data, now) {
    var handler = HANDLERS[kind];
    if (!handler || !isObject(data)) { return false; }
    handler(st, rest, data, now);
    return true;
  }

  function activeFaults(st) {
    return Object.keys(st.faults).sort().map(function (component) {
      return {component: component, fault: st.faults[component]};
    }).filter(function (item) { return item.fault.active === true; });
  }

  function rankOf(st) {
    var active = activeFaults(st);
    var any = function (test) { return active.some(function (item) { return test(item.fault); }); };
    var stateName = st.status ? st.status.state : null;
    if (stateName === "lost") { return "lost"; }
    if (any(function (f) { return f.severity === "critical"; })) { return "critical"; }
    if (any(function (f) { return f.parker_impact === "out_of_service"; })) { return "out_of_service"; }
    if (stateName === "offline") { return "offline"; }
    if (any(function (f) { return f.severity === "warning"; })) { return "warning"; }
    return "healthy";
  }

  function earliestSince(st) {
    var times = activeFaults(st).map(function (item) { return text(item.fault.since); }).filter(Boolean).sort();
    return times.length ? times[0] : "~";
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
    return SEVERITY_ORDER.hasOwnProperty(alert.severity) ? SEVERITY_ORDER[alert.severity] : 3;
  }

  function sortAlerts(alerts) {
    return Object.keys(alerts).sort(function (a, b) {
      var x = alerts[a], y = alerts[b];
      var byState = (x.state === "acknowledged") - (y.state === "acknowledged");
      var bySeverity = severityRank(x) - severityRank(y);
      return byState || bySeverity || (text(x.opened) < text(y.opened) ? -1 : text(x.opened) > text(y.opened) ? 1 : 0) ||
        (a < b ? -1 : 1);
    });
  }

  return {
    PREFIX: PREFIX, RANKS: RANKS, IMPACTS: IMPACTS, STATION_ID: STATION_ID, USER_NAME: USER_NAME, ALERT_ID: ALERT_ID,
    SEVERITY_ORDER: SEVERITY_ORDER, isObject: isObject, text: text, parse: parse, newStation: newStation, apply: apply,
    activeFaults: activeFaults, rankOf: rankOf, sortStations: sortStations, sortAlerts: sortAlerts
  };
}());
