/* The crew page's connection: MQTT 5 over the broker's websockets listener, what it subscribes, what the broker refuses. */
"use strict";

var CrewLink = (function () {
  var PREFIX = CrewModel.PREFIX;
  var REFUSED_SIGN_IN = [134, 135];  /* CONNACK: bad user name or password, not authorized */
  var REFUSED = 0x80;  /* a PUBACK or SUBACK reason code from here on refuses (0x87: not authorized) */
  var OUTCOME = {SENT: "sent", DENIED: "denied", FAILED: "failed"};
  /* The retained state at QoS 0, which the broker writes out whole (at QoS 1 it queues 1,000 and drops the rest). */
  var STATE_TOPICS = [PREFIX + "/+/status", PREFIX + "/+/fault/+", PREFIX + "/+/telemetry", PREFIX + "/_alerts/+"];

  function randomHex(bytes) {
    var values = new Uint8Array(bytes);
    crypto.getRandomValues(values);
    return Array.prototype.map.call(values, function (b) { return (b < 16 ? "0" : "") + b.toString(16); }).join("");
  }

  /* What the broker's answer to a QoS 1 publish says. */
  function outcomeOf(error) {
    if (!error) { return OUTCOME.SENT; }
    return typeof error.code === "number" && error.code >= REFUSED ? OUTCOME.DENIED : OUTCOME.FAILED;
  }

  /* Connect as ``user`` and keep connecting; ``on`` gets connected(), down(), refused() (the sign-in),
     message(topic, body, correlation), denied(topics) (subscriptions the broker refused). */
  function open(user, password, on) {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var tag = randomHex(4);
    var replyTopic = PREFIX + "/+/reply/crew-" + user + "/" + tag;  /* the crew reads only reply/crew-{user}/# (broker.md) */
    var decoder = new TextDecoder();
    var client = mqtt.connect(scheme + location.host + "/mqtt", {
      protocolVersion: 5, username: user, password: password, clientId: "crew-" + user + "-" + tag, clean: true,
      keepalive: 20, reconnectPeriod: 3000, connectTimeout: 10000, resubscribe: false});

    function subscribed(error, granted) {
      var refused = (granted || []).filter(function (grant) { return grant.qos >= REFUSED; }).map(function (g) { return g.topic; });
      if (error || refused.length) { on.denied(refused.length ? refused : STATE_TOPICS); }
    }

    client.on("connect", function () {
      var topics = {};
      STATE_TOPICS.forEach(function (topic) { topics[topic] = {qos: 0}; });
      topics[replyTopic] = {qos: 1};
      client.subscribe(topics, subscribed);
      on.connected();
    });
    client.on("message", function (topic, payload, packet) {
      var raw = packet.properties && packet.properties.correlationData;
      on.message(topic, decoder.decode(payload), raw ? decoder.decode(raw) : "");
    });
    client.on("close", function () { on.down(); });
    client.on("error", function (error) {
      if (error && REFUSED_SIGN_IN.indexOf(error.code) >= 0) { on.refused(); }
    });

    return {
      /* A command to ``station``: an MQTT 5 request with a fresh correlation id (returned); ``done(outcome)``. */
      request: function (station, topic, payload, done) {
        var correlation = randomHex(16);
        client.publish(topic, JSON.stringify(payload), {qos: 1, retain: false, properties: {
          responseTopic: PREFIX + "/" + station + "/reply/crew-" + user + "/" + tag, correlationData: correlation,
          payloadFormatIndicator: true, contentType: "application/json"}}, function (error) { done(outcomeOf(error)); });
        return correlation;
      },
      /* A plain QoS 1 message (an acknowledgement); ``done(outcome)``. */
      publish: function (topic, payload, done) {
        client.publish(topic, JSON.stringify(payload), {qos: 1, retain: false}, function (error) { done(outcomeOf(error)); });
      },
      end: function () { client.end(true); }
    };
  }

  return {OUTCOME: OUTCOME, open: open};
}());
