"""The bridge's judgement (pure, ``now`` passed in): which problems become alerts, whom they reach, when they end."""
from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bridge.messages import AckSeen, FaultSeen, HelpSeen, LinkState, Observation, StatusSeen
from bridge.model import Alert, AlertState, Delivery, Problem, SendKind, Severity, Target
from bridge.rules import Rules

__all__ = ["AckIgnored", "Case", "CaseKey", "Engine", "Outcome", "StationInfo", "new_alert_id"]

log = logging.getLogger(__name__)

LOST, HELP = "lost", "help"  # the subjects of a station's lost link and help call; a fault's is fault/{component}
SEVERITY_RANK = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
CaseKey = tuple[str, str]  # (station, subject)


class AckIgnored(Exception):
    """An acknowledgement that changes nothing: an unknown or closed alert, or one acknowledged already."""


@dataclass
class StationInfo:
    """What the bridge knows of a station: its zone (from its birth or help calls) and its newest boot."""

    station: str
    zone: str | None = None
    boot: int | None = None


@dataclass
class Case:
    """One problem at one station (a lost link, a fault of one component, an unanswered help call).

    ``since`` is when it began (the station's time where it says one), ``raised`` when its grace time counts
    from, ``raises`` the bridge's times of its raises within the flap window, ``cleared`` when it last ended.
    """

    station: str
    subject: str
    problem: Problem
    active: bool
    code: str | None
    severity: Severity
    message: str
    parker_impact: str | None
    since: datetime
    raised: datetime
    raises: list[datetime] = field(default_factory=list)
    cleared: datetime | None = None
    alert_id: str | None = None

    @property
    def key(self) -> CaseKey:
        """Its identity: station and subject."""
        return (self.station, self.subject)

    @property
    def component(self) -> str | None:
        """The faulty component (None for a lost link or a help call)."""
        return self.subject.removeprefix("fault/") if self.problem is Problem.FAULT else None


@dataclass
class Outcome:
    """What one step changed: cases (None: forgotten), alerts (closed ones too), stations, and what to send."""

    cases: dict[CaseKey, Case | None] = field(default_factory=dict)
    alerts: dict[str, Alert] = field(default_factory=dict)
    stations: dict[str, StationInfo] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.cases or self.alerts or self.stations or self.deliveries)

    def merge(self, later: Outcome) -> None:
        """Add what a later step changed (its versions win)."""
        self.cases.update(later.cases)
        self.alerts.update(later.alerts)
        self.stations.update(later.stations)
        self.deliveries.extend(later.deliveries)


def new_alert_id() -> str:
    """A fresh alert id (``[a-z0-9-]``)."""
    return f"a-{secrets.token_hex(8)}"


class Engine:
    """The bridge's state of problems and alerts, changed by observations, acknowledgements and the passing of time."""

    def __init__(self, rules: Rules, *, cases: Iterable[Case] = (), alerts: Iterable[Alert] = (),
                 stations: Iterable[StationInfo] = (), new_id: Callable[[], str] = new_alert_id) -> None:
        self.rules = rules
        self.cases: dict[CaseKey, Case] = {case.key: case for case in cases}
        self.alerts: dict[str, Alert] = {alert.id: alert for alert in alerts if alert.closed is None}
        self.stations: dict[str, StationInfo] = {info.station: info for info in stations}
        self._new_id = new_id
        self._out = Outcome()

    # ---- inputs ----

    def observe(self, seen: Observation, now: datetime) -> Outcome:
        """Take one message from a station (AckSeen goes to acknowledge())."""
        if isinstance(seen, AckSeen):
            raise TypeError("acknowledgements go to Engine.acknowledge")
        OBSERVERS[type(seen)](self, seen, now)
        return self._take()

    def acknowledge(self, ack: AckSeen, now: datetime) -> Outcome:
        """Someone took an alert: it escalates no more. AckIgnored says why nothing changed."""
        alert = self.alerts.get(ack.alert_id)
        if alert is None:
            raise AckIgnored(f"{ack.user} acknowledged {ack.alert_id}, which is unknown or closed")
        if alert.state is AlertState.ACKNOWLEDGED:
            raise AckIgnored(f"{ack.user} acknowledged {ack.alert_id}, which {alert.acked_by} acknowledged already")
        alert.state, alert.acked_by, alert.acked_at, alert.ack_note = AlertState.ACKNOWLEDGED, ack.user, now, ack.note
        alert.escalate_at = None
        self._out.alerts[alert.id] = alert
        log.info("alert %s (%s) acknowledged by %s", alert.id, alert.title, ack.user)
        return self._take()

    def knows(self, alert_id: str) -> bool:
        """Whether ``alert_id`` is one of the open alerts."""
        return alert_id in self.alerts

    def tick(self, now: datetime) -> Outcome:
        """Let time pass: open the alerts whose grace is over, close the ended ones, escalate, forget old cases."""
        settings = self.rules.bridge
        window = timedelta(seconds=settings.flap_window_s)
        for case in self.cases.values():
            recent = [moment for moment in case.raises if moment > now - window]
            if recent != case.raises:
                case.raises = recent
                self._out.cases[case.key] = case
        self._open_due(now)
        for alert in list(self.alerts.values()):
            self._maybe_close(alert, now)
        for alert in list(self.alerts.values()):
            if alert.escalate_at is not None and alert.escalate_at <= now:
                self._escalate(alert, now)
        for case in list(self.cases.values()):
            if not case.active and case.alert_id is None and case.cleared is not None and case.cleared + window <= now:
                del self.cases[case.key]
                self._out.cases[case.key] = None
        return self._take()

    # ---- observations ----

    def _status(self, seen: StatusSeen, now: datetime) -> None:
        info = self.stations.setdefault(seen.station, StationInfo(seen.station))
        if seen.state is LinkState.LOST:
            if seen.boot is not None and info.boot is not None and seen.boot < info.boot:
                log.info("%s: a stale lost will (boot %s, newest %s) ignored", seen.station, seen.boot, info.boot)
                return
            zone = f" in zone {info.zone}" if info.zone else ""
            self._raise(seen.station, LOST, Problem.LOST, None, Severity.CRITICAL,
                        f"Station {seen.station}{zone} has no connection to the broker.", None, now, now)
            return
        if seen.boot is not None and (info.boot is None or seen.boot > info.boot):
            info.boot = seen.boot
            self._out.stations[info.station] = info
        if seen.zone is not None and seen.zone != info.zone:
            info.zone = seen.zone
            self._out.stations[info.station] = info
        self._clear(seen.station, LOST, now)

    def _fault(self, seen: FaultSeen, now: datetime) -> None:
        subject = f"fault/{seen.component}"
        if seen.active:
            self._raise(seen.station, subject, Problem.FAULT, seen.code, seen.severity, seen.message,
                        seen.parker_impact, seen.since or now, now)
        else:
            self._clear(seen.station, subject, now)

    def _help(self, seen: HelpSeen, now: datetime) -> None:
        info = self.stations.setdefault(seen.station, StationInfo(seen.station))
        if seen.zone is not None and seen.zone != info.zone:
            info.zone = seen.zone
            self._out.stations[info.station] = info
        case = self.cases.get((seen.station, HELP))
        if seen.waiting and seen.overdue:
            if case is None or not case.active or case.code != seen.ticket:
                self._clear(seen.station, HELP, now)
                zone = f" in zone {info.zone}" if info.zone else ""
                self._raise(seen.station, HELP, Problem.HELP, seen.ticket, Severity.WARNING,
                            f"A parker at station {seen.station}{zone} asked for help and nobody has answered.",
                            None, now, now)
        elif case is not None and (not seen.waiting or case.code != seen.ticket):
            self._clear(seen.station, HELP, now)

    def _raise(self, station: str, subject: str, problem: Problem, code: str | None, severity: Severity,
               message: str, impact: str | None, since: datetime, now: datetime) -> None:
        case = self.cases.get((station, subject))
        if case is None:
            case = Case(station, subject, problem, True, code, severity, message, impact, since, min(since, now))
            self.cases[case.key] = case
            self._count_raise(case, now)
        elif not case.active:
            case.active, case.cleared, case.raised = True, None, min(since, now)
            if case.alert_id is None:
                case.since = since
            self._count_raise(case, now)
        elif (case.code, case.severity, case.message, case.parker_impact) == (code, severity, message, impact):
            return
        case.code, case.severity, case.message, case.parker_impact = code, severity, message, impact
        self._out.cases[case.key] = case
        alert = self.alerts.get(case.alert_id) if case.alert_id else None
        if alert is not None and alert.problem is Problem.FAULT:
            alert.code, alert.severity, alert.message, alert.parker_impact = code, severity, message, impact
            alert.title = _title(alert.problem, station, case.component, code, len(alert.stations))
            self._out.alerts[alert.id] = alert

    def _count_raise(self, case: Case, now: datetime) -> None:
        case.raises.append(now)
        alert = self.alerts.get(case.alert_id) if case.alert_id else None
        if alert is not None:
            alert.changes += 1
            self._out.alerts[alert.id] = alert

    def _clear(self, station: str, subject: str, now: datetime) -> None:
        case = self.cases.get((station, subject))
        if case is not None and case.active:
            case.active, case.cleared = False, now
            self._out.cases[case.key] = case

    # ---- time ----

    def _grace(self, problem: Problem) -> timedelta:
        settings = self.rules.bridge
        seconds = {Problem.LOST: settings.lost_grace_s, Problem.HELP: 0.0}.get(problem, settings.grace_s)
        return timedelta(seconds=seconds)

    def _flapping(self, raises: int) -> bool:
        return raises >= self.rules.bridge.flap_threshold

    def _open_due(self, now: datetime) -> None:
        due = [case for case in self.cases.values() if case.active and case.alert_id is None
               and (case.raised + self._grace(case.problem) <= now or self._flapping(len(case.raises)))]
        fleets: dict[tuple[str | None, str | None], list[Case]] = {}
        for case in sorted(due, key=lambda c: (c.raised, c.station, c.subject)):
            if case.problem is Problem.FAULT:
                fleets.setdefault((case.component, case.code), []).append(case)
            else:
                self._open([case], case.problem, now)
        for (component, code), cases in fleets.items():
            fleet = next((alert for alert in self.alerts.values() if alert.problem is Problem.FLEET_FAULT
                          and (alert.component, alert.code) == (component, code)), None)
            if fleet is not None:
                self._join(fleet, cases)
                continue
            recent = now - timedelta(seconds=self.rules.bridge.fleet_window_s)
            pending = [case for case in self.cases.values() if case.active and case.alert_id is None
                       and case.problem is Problem.FAULT and (case.component, case.code) == (component, code)
                       and case.raised >= recent]
            everyone = cases + [case for case in pending if case not in cases]
            if len(everyone) >= self.rules.bridge.fleet_threshold:
                self._open(sorted(everyone, key=lambda c: c.station), Problem.FLEET_FAULT, now)
            else:
                for case in cases:
                    self._open([case], Problem.FAULT, now)

    def _open(self, cases: list[Case], problem: Problem, now: datetime) -> None:
        first = cases[0]
        zones = {case.station: self.stations.get(case.station, StationInfo(case.station)).zone for case in cases}
        severity = min((case.severity for case in cases), key=SEVERITY_RANK.__getitem__)
        route = self.rules.route(problem, severity, first.component, zones, now)
        since = min(case.since for case in cases)
        message = first.message
        if problem is Problem.LOST:
            message = f"{first.message.removesuffix('.')} since {_local(since, self.rules)}."
        alert = Alert(id=self._new_id(), problem=problem,
                      title=_title(problem, first.station, first.component, first.code, len(cases)),
                      stations=[case.station for case in cases], zones=zones, component=first.component,
                      code=None if problem is Problem.HELP else first.code, severity=severity, message=message,
                      parker_impact=first.parker_impact,
                      since=since, opened=now, group=route.group, escalate_at=self._escalation(route.group, now),
                      changes=sum(max(1, len(case.raises)) for case in cases))
        for case in cases:
            case.alert_id = alert.id
            self._out.cases[case.key] = case
        self.alerts[alert.id] = alert
        self._send(alert, SendKind.ALERT, self.rules.targets(route.group))
        log.info("alert %s opened: %s (to %s)", alert.id, alert.title, route.group)

    def _join(self, fleet: Alert, cases: list[Case]) -> None:
        for case in cases:
            case.alert_id = fleet.id
            fleet.stations.append(case.station)
            fleet.zones[case.station] = self.stations.get(case.station, StationInfo(case.station)).zone
            fleet.changes += max(1, len(case.raises))
            if SEVERITY_RANK[case.severity] < SEVERITY_RANK[fleet.severity]:
                fleet.severity = case.severity
            self._out.cases[case.key] = case
        fleet.title = _title(fleet.problem, fleet.stations[0], fleet.component, fleet.code, len(fleet.stations))
        self._out.alerts[fleet.id] = fleet
        log.info("alert %s: %d more stations joined (%s)", fleet.id, len(cases), fleet.title)

    def _maybe_close(self, alert: Alert, now: datetime) -> None:
        cases = [case for case in self.cases.values() if case.alert_id == alert.id]
        if any(case.active for case in cases):
            return
        ended = max((case.cleared for case in cases if case.cleared is not None), default=now)
        settings = self.rules.bridge
        settle = 0.0 if alert.problem is Problem.HELP else settings.grace_s
        if self._flapping(alert.changes):
            settle = settings.flap_window_s
        if ended + timedelta(seconds=settle) > now:
            return
        alert.closed, alert.escalate_at = now, None
        for case in cases:
            case.alert_id = None
            self._out.cases[case.key] = case
        del self.alerts[alert.id]
        self._send(alert, SendKind.RESOLVED, list(alert.notified))
        log.info("alert %s closed: %s", alert.id, alert.title)

    def _escalate(self, alert: Alert, now: datetime) -> None:
        group = self.rules.groups.get(alert.group)
        following = group.escalate_to if group is not None else None
        if following is None or following not in self.rules.groups:
            alert.escalate_at = None
        else:
            alert.level, alert.group = alert.level + 1, following
            alert.escalate_at = self._escalation(following, now)
            self._send(alert, SendKind.ESCALATION, self.rules.targets(following))
            log.info("alert %s escalated to %s (level %d)", alert.id, following, alert.level)
        self._out.alerts[alert.id] = alert

    def _escalation(self, group: str, now: datetime) -> datetime | None:
        found = self.rules.groups.get(group)
        if found is None or found.escalate_to is None:
            return None
        return now + timedelta(seconds=self.rules.bridge.escalate_after_s)

    def _send(self, alert: Alert, kind: SendKind, targets: list[Target]) -> None:
        for target in targets:
            self._out.deliveries.append(Delivery(alert.id, alert.level, kind, target))
            if target not in alert.notified:
                alert.notified.append(target)
        self._out.alerts[alert.id] = alert

    def _take(self) -> Outcome:
        out, self._out = self._out, Outcome()
        return out


def _title(problem: Problem, station: str, component: str | None, code: str | None, count: int) -> str:
    return {Problem.LOST: f"Station {station} lost",
            Problem.FAULT: f"{station}: {component} {code}",
            Problem.FLEET_FAULT: f"{component} {code} at {count} stations",
            Problem.HELP: f"Help call unanswered at {station}"}[problem]


def _local(moment: datetime, rules: Rules) -> str:
    return moment.astimezone(rules.bridge.timezone).strftime("%Y-%m-%d %H:%M %Z")


OBSERVERS: dict[type, Callable[[Engine, Observation, datetime], None]] = {
    StatusSeen: Engine._status, FaultSeen: Engine._fault, HelpSeen: Engine._help,  # type: ignore[dict-item]
}
