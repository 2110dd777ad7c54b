"""The bridge's judgement (pure, ``now`` passed in): which problems become alerts, whom they reach, when they end."""
from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from bridge.messages import AckSeen, FaultSeen, HelpSeen, LinkState, Observation, StatusSeen
from bridge.model import Alert, AlertState, Delivery, Problem, RepairSeen, SendKind, Severity, Target
from bridge.rules import Rules

__all__ = ["STATION_CAP", "AckIgnored", "Case", "CaseKey", "Engine", "FleetKey", "Outcome", "StationInfo", "Subject",
           "fault_subject", "new_alert_id"]

log = logging.getLogger(__name__)

SEVERITY_RANK = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
CaseKey = tuple[str, str]  # (station, subject)
FleetKey = tuple[Problem, str | None, str | None]  # (the fleet's problem, component, code)
FLEETS = {Problem.FAULT: Problem.FLEET_FAULT, Problem.LOST: Problem.FLEET_LOST}  # a station's problem: its fleet's
STATION_CAP = 5  # open fault alerts of one station at most; more faults there go into one summary


class Subject(StrEnum):
    """The subjects of a station's lost link and help call; a fault's is ``fault/{component}`` (fault_subject)."""

    LOST = "lost"
    HELP = "help"


def fault_subject(component: str) -> str:
    """The subject of a fault of ``component``."""
    return f"fault/{component}"


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

    ``since`` is when it began (the station's time where it says one), ``raised`` when the bridge first saw it
    active this time (its grace counts from it, by the bridge's clock), ``raises`` the bridge's times of its raises
    within the flap window (before its clear, once cleared), ``cleared`` when it last ended.
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
    """The bridge's state of problems and alerts, changed by observations, acknowledgements and the passing of time.

    ``station_cap`` is how many fault alerts of their own one station may have open; its further faults share one
    summary alert.
    """

    def __init__(self, rules: Rules, *, cases: Iterable[Case] = (), alerts: Iterable[Alert] = (),
                 stations: Iterable[StationInfo] = (), new_id: Callable[[], str] = new_alert_id,
                 station_cap: int = STATION_CAP) -> None:
        self.rules = rules
        self.station_cap = station_cap
        self.cases: dict[CaseKey, Case] = {case.key: case for case in cases}
        self.alerts: dict[str, Alert] = {alert.id: alert for alert in alerts if alert.closed is None}
        self.stations: dict[str, StationInfo] = {info.station: info for info in stations}
        self._members: dict[str, dict[CaseKey, Case]] = {alert_id: {} for alert_id in self.alerts}
        self._out = Outcome()
        for case in self.cases.values():
            if case.alert_id in self._members:
                self._members[case.alert_id][case.key] = case
            elif case.alert_id is not None:
                log.warning("%s %s: its alert %s is not open: unlinked", case.station, case.subject, case.alert_id)
                case.alert_id = None
                self._out.cases[case.key] = case
        self._new_id = new_id

    # ---- inputs ----

    def observe(self, seen: Observation | RepairSeen, now: datetime) -> Outcome:
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
        window = timedelta(seconds=self.rules.bridge.flap_window_s)
        for case in self.cases.values():
            end = case.cleared if not case.active and case.cleared is not None else now
            recent = [moment for moment in case.raises if moment > end - window]
            if recent != case.raises:
                case.raises = recent
                self._out.cases[case.key] = case
        self._open_due(now)
        for alert in list(self.alerts.values()):
            self._settle(alert, now)
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
                log.info("%s: a stale lost will (boot %s, the last birth's %s) ignored", seen.station, seen.boot,
                         info.boot)
                return
            zone = f" in zone {info.zone}" if info.zone else ""
            self._raise(seen.station, Subject.LOST, Problem.LOST, None, Severity.CRITICAL,
                        f"Station {seen.station}{zone} has no connection to the broker.", None, now, now)
            return
        if seen.state is LinkState.ONLINE and seen.boot is not None and seen.boot != info.boot:
            info.boot = seen.boot  # the latest birth's, even when lower (a re-imaged unit counts again from its clock)
            self._out.stations[info.station] = info
        if seen.zone is not None and seen.zone != info.zone:
            info.zone = seen.zone
            self._out.stations[info.station] = info
        self._clear(seen.station, Subject.LOST, now, now)

    def _fault(self, seen: FaultSeen, now: datetime) -> None:
        subject = fault_subject(seen.component)
        if seen.active:
            self._raise(seen.station, subject, Problem.FAULT, seen.code, seen.severity, seen.message,
                        seen.parker_impact, seen.since or now, now)
        else:
            self._clear(seen.station, subject, seen.since or now, now)

    def _help(self, seen: HelpSeen, now: datetime) -> None:
        info = self.stations.setdefault(seen.station, StationInfo(seen.station))
        if seen.zone is not None and seen.zone != info.zone:
            info.zone = seen.zone
            self._out.stations[info.station] = info
        case = self.cases.get((seen.station, Subject.HELP))
        if seen.waiting and seen.overdue:
            if case is None or not case.active or case.code != seen.ticket:
                self._clear(seen.station, Subject.HELP, now, now)
                zone = f" in zone {info.zone}" if info.zone else ""
                self._raise(seen.station, Subject.HELP, Problem.HELP, seen.ticket, Severity.WARNING,
                            f"A parker at station {seen.station}{zone} asked for help and nobody has answered.",
                            None, now, now)
        elif case is not None and (not seen.waiting or case.code != seen.ticket):
            self._clear(seen.station, Subject.HELP, now, now)

    def _repair(self, seen: RepairSeen, now: datetime) -> None:
        case = self.cases.get((seen.station, fault_subject(seen.component)))
        alert = self.alerts.get(case.alert_id) if case is not None and case.alert_id else None
        if alert is None:
            log.info("%s: a repair note of %s, which has no open alert", seen.station, seen.component)
            return
        self._repaired(alert, seen.at)

    def _raise(self, station: str, subject: str, problem: Problem, code: str | None, severity: Severity,
               message: str, impact: str | None, since: datetime, now: datetime) -> None:
        case = self.cases.get((station, subject))
        if case is None:
            case = Case(station, subject, problem, True, code, severity, message, impact, since, now)
            self.cases[case.key] = case
            self._count_raise(case, now)
        elif not case.active:
            case.active, case.cleared, case.raised = True, None, now
            if case.alert_id is None:
                case.since = since
            self._count_raise(case, now)
        elif (case.code, case.severity, case.message, case.parker_impact) == (code, severity, message, impact):
            return
        alert = self.alerts.get(case.alert_id) if case.alert_id else None
        if alert is not None and alert.problem in FLEETS.values() and (
                code != alert.code or SEVERITY_RANK[severity] < SEVERITY_RANK[alert.severity]):
            log.info("alert %s: %s changed to %s %s and leaves it", alert.id, station, code, severity.value)
            self._leave(alert, case, now)
            case.since, case.raised = since, now
            alert = None
        case.code, case.severity, case.message, case.parker_impact = code, severity, message, impact
        self._out.cases[case.key] = case
        if alert is not None and alert.problem is Problem.FAULT and alert.component is not None:
            alert.code, alert.severity, alert.message, alert.parker_impact = code, severity, message, impact
            alert.title = _title(alert.problem, station, case.component, code, len(alert.stations))
            self._out.alerts[alert.id] = alert
        elif alert is not None and alert.problem is Problem.FAULT:
            self._summarise(alert)

    def _count_raise(self, case: Case, now: datetime) -> None:
        case.raises.append(now)
        alert = self.alerts.get(case.alert_id) if case.alert_id else None
        if alert is None:
            return
        if _shared(alert):
            alert.changes = max(alert.changes, len(case.raises))  # flapping is per station and component
        else:
            alert.changes += 1
            alert.repaired = None  # the repair did not hold
        self._out.alerts[alert.id] = alert

    def _clear(self, station: str, subject: str, repaired: datetime, now: datetime) -> None:
        case = self.cases.get((station, subject))
        if case is not None and case.active:
            case.active, case.cleared = False, now
            self._out.cases[case.key] = case
            alert = self.alerts.get(case.alert_id) if case.alert_id else None
            if alert is not None:
                self._repaired(alert, repaired)

    def _repaired(self, alert: Alert, moment: datetime) -> None:
        """Note a repair: an alert of many stations is repaired at the last one's, an alert of one at its first."""
        if alert.repaired is None:
            alert.repaired = moment
        else:
            alert.repaired = max(alert.repaired, moment) if _shared(alert) else min(alert.repaired, moment)
        self._out.alerts[alert.id] = alert

    # ---- time ----

    def _grace(self, problem: Problem) -> timedelta:
        settings = self.rules.bridge
        seconds = {Problem.LOST: settings.lost_grace_s, Problem.HELP: 0.0}.get(problem, settings.grace_s)
        return timedelta(seconds=seconds)

    def _flapping(self, case: Case) -> bool:
        """Flapping is a fault's, at one station: a lost link waits for its grace however often it drops."""
        return case.problem is Problem.FAULT and len(case.raises) >= self.rules.bridge.flap_threshold

    def _settled(self, case: Case, now: datetime) -> bool:
        """Whether a case stayed clear long enough for its alert to end (a flapping fault: the whole flap window)."""
        if case.active or case.cleared is None:
            return False
        settings = self.rules.bridge
        settle = settings.flap_window_s if self._flapping(case) else settings.grace_s
        return case.cleared + timedelta(seconds=0.0 if case.problem is Problem.HELP else settle) <= now

    def _open_due(self, now: datetime) -> None:
        due = sorted((case for case in self.cases.values() if case.active and case.alert_id is None
                      and (case.raised + self._grace(case.problem) <= now or self._flapping(case))),
                     key=lambda c: (c.raised, c.station, c.subject))
        if not due:
            return
        fleets: dict[FleetKey, list[Alert]] = {}
        for alert in self.alerts.values():
            if alert.problem in FLEETS.values():
                fleets.setdefault((alert.problem, alert.component, alert.code), []).append(alert)
        active: dict[FleetKey, list[Case]] = {}
        for case in self.cases.values():
            key = _fleet_key(case)
            if case.active and key is not None:
                active.setdefault(key, []).append(case)
        for case in due:
            key = _fleet_key(case)
            if case.alert_id is not None:  # taken by a fleet that formed in this tick
                continue
            if key is None:
                self._open([case], case.problem, now)
                continue
            fleet = next((alert for alert in fleets.get(key, []) if self._may_join(alert, case, now)), None)
            if fleet is not None:
                self._join(fleet, case)
                continue
            formed = self._form(key, case, active.get(key, []), now)
            if formed is not None:
                fleets.setdefault(key, []).append(formed)
            elif case.problem is Problem.FAULT and self._own_faults(case.station) >= self.station_cap:
                self._add_to_summary(case, now)
            else:
                self._open([case], case.problem, now)

    def _may_join(self, fleet: Alert, case: Case, now: datetime) -> bool:
        """A station joins a fleet alert that nobody took yet, whose last member came within the fleet window,
        that is not milder than its fault, and that its route gives to the same group."""
        members = list(self._members[fleet.id].values())
        window = timedelta(seconds=self.rules.bridge.fleet_window_s)
        return (fleet.state is AlertState.OPEN and bool(members)
                and case.raised - max(member.raised for member in members) <= window
                and SEVERITY_RANK[case.severity] >= SEVERITY_RANK[fleet.severity]
                and self._group([case], fleet.problem, now, fleet.severity)
                == self._group(members, fleet.problem, now, fleet.severity))

    def _form(self, key: FleetKey, case: Case, active: list[Case], now: datetime) -> Alert | None:
        """A fleet alert of the stations with ``case``'s problem raised within the fleet window and routed to the same
        group, when they are enough: those not alerted yet, and those alerted on their own whom nobody took (their
        alerts close quietly, merged into the fleet's)."""
        settings = self.rules.bridge
        recent = now - timedelta(seconds=settings.fleet_window_s)
        group = self._group([case], key[0], now, case.severity)
        members = [other for other in active if other.raised >= recent and self._foldable(other)
                   and self._group([other], key[0], now, other.severity) == group]
        if not any(member is case for member in members):
            members.append(case)
        if len(members) < settings.fleet_threshold:
            return None
        members.sort(key=lambda c: (c.raised, c.station))
        merged = [self.alerts[member.alert_id] for member in members if member.alert_id is not None]
        for alert in merged:
            log.info("alert %s (%s): merged into a fleet alert", alert.id, alert.title)
            self._close(alert, now, quiet=True)
        fleet = self._open(members, key[0], now, merged)
        return fleet

    def _foldable(self, case: Case) -> bool:
        """Whether a case may go into a new fleet alert: not alerted, or alerted on its own and not taken yet."""
        if case.alert_id is None:
            return True
        alert = self.alerts[case.alert_id]
        return alert.state is AlertState.OPEN and not _shared(alert) and alert.level == 0

    def _group(self, cases: list[Case], problem: Problem, now: datetime, severity: Severity) -> str:
        zones = {case.station: self._zone(case.station) for case in cases}
        return self.rules.route(problem, severity, cases[0].component, zones, now).group

    def _zone(self, station: str) -> str | None:
        info = self.stations.get(station)
        return info.zone if info is not None else None

    def _own_faults(self, station: str) -> int:
        return sum(1 for alert in self.alerts.values() if alert.problem is Problem.FAULT
                   and alert.component is not None and alert.stations == [station])

    def _add_to_summary(self, case: Case, now: datetime) -> None:
        summary = next((alert for alert in self.alerts.values() if alert.problem is Problem.FAULT
                        and alert.component is None and alert.stations == [case.station]), None)
        if summary is None:
            self._open([case], Problem.FAULT, now, summary=True)
        else:
            self._link(case, summary)
            summary.changes = max(summary.changes, len(case.raises))
            self._summarise(summary)
            log.info("alert %s: %s joined the summary", summary.id, case.subject)

    def _summarise(self, summary: Alert) -> None:
        """A summary alert's words, from the faults it holds now."""
        members = sorted(self._members[summary.id].values(), key=lambda c: c.subject)
        summary.severity = min((case.severity for case in members), key=SEVERITY_RANK.__getitem__,
                               default=summary.severity)
        summary.title = f"{summary.stations[0]}: {len(members)} more faults"
        summary.message = (f"{summary.stations[0]} has more than {self.station_cap} faults at once; these have no "
                           "alert of their own: " + "; ".join(f"{case.component} {case.code}" for case in members) + ".")
        self._out.alerts[summary.id] = summary

    def _open(self, cases: list[Case], problem: Problem, now: datetime, merged: Iterable[Alert] = (),
              *, summary: bool = False) -> Alert:
        first = cases[0]
        zones = {case.station: self._zone(case.station) for case in cases}
        severity = min((case.severity for case in cases), key=SEVERITY_RANK.__getitem__)
        route = self.rules.route(problem, severity, None if summary else first.component, zones, now)
        since = min(case.since for case in cases)
        message = {Problem.LOST: f"{first.message.removesuffix('.')} since {_local(since, self.rules)}.",
                   Problem.FLEET_LOST: f"Stations have no connection to the broker, the first since "
                                       f"{_local(since, self.rules)}."}.get(problem, first.message)
        merged = list(merged)
        if merged:
            message += " It replaces the alerts " + ", ".join(f"{alert.id} ({alert.stations[0]})"
                                                              for alert in merged) + "."
        alert = Alert(id=self._new_id(), problem=problem,
                      title=_title(problem, first.station, first.component, first.code, len(cases)),
                      stations=[case.station for case in cases], zones=zones,
                      component=None if summary else first.component,
                      code=None if problem is Problem.HELP or summary else first.code, severity=severity,
                      message=message, parker_impact=None if summary else first.parker_impact,
                      since=since, opened=now, group=route.group, escalate_at=self._escalation(route.group, now),
                      changes=max(max(1, len(case.raises)) if case.problem is Problem.FAULT else 1 for case in cases))
        self.alerts[alert.id] = alert
        self._members[alert.id] = {}
        for case in cases:
            self._link(case, alert)
        if summary:
            self._summarise(alert)
        self._send(alert, SendKind.ALERT, self.rules.targets(route.group))
        for old in merged:  # who got a merged alert hears when the fleet's is resolved
            alert.notified.extend(target for target in old.notified if target not in alert.notified)
        log.info("alert %s opened: %s (to %s)", alert.id, alert.title, route.group)
        return alert

    def _link(self, case: Case, alert: Alert) -> None:
        case.alert_id = alert.id
        self._members[alert.id][case.key] = case
        self._out.cases[case.key] = case

    def _unlink(self, case: Case) -> None:
        if case.alert_id is not None:
            self._members.get(case.alert_id, {}).pop(case.key, None)
        case.alert_id = None
        self._out.cases[case.key] = case

    def _join(self, fleet: Alert, case: Case) -> None:
        self._link(case, fleet)
        fleet.stations.append(case.station)
        fleet.zones[case.station] = self._zone(case.station)
        fleet.changes = max(fleet.changes, len(case.raises))
        fleet.title = _title(fleet.problem, fleet.stations[0], fleet.component, fleet.code, len(fleet.stations))
        self._out.alerts[fleet.id] = fleet
        log.info("alert %s: %s joined (%s)", fleet.id, case.station, fleet.title)

    def _leave(self, alert: Alert, case: Case, now: datetime) -> None:
        """A case leaves an alert of many stations or faults; the last one's leaving closes it (resolved)."""
        if set(self._members[alert.id]) <= {case.key}:
            self._close(alert, now)
            return
        self._unlink(case)
        if alert.problem is Problem.FAULT:
            self._summarise(alert)
            return
        if case.station in alert.stations:
            alert.stations.remove(case.station)
            alert.zones.pop(case.station, None)
        alert.title = _title(alert.problem, alert.stations[0], alert.component, alert.code, len(alert.stations))
        self._out.alerts[alert.id] = alert
        log.info("alert %s: %s left (%s)", alert.id, case.station, alert.title)

    def _settle(self, alert: Alert, now: datetime) -> None:
        """Close an alert whose problems all stayed clear for their settle time; members of a shared one leave it."""
        members = list(self._members[alert.id].values())
        settled = [case for case in members if self._settled(case, now)]
        if len(settled) == len(members):
            self._close(alert, now)
        elif _shared(alert):
            for case in settled:
                self._leave(alert, case, now)

    def _close(self, alert: Alert, now: datetime, *, quiet: bool = False) -> None:
        alert.closed, alert.escalate_at = now, None
        for case in list(self._members.pop(alert.id).values()):
            self._unlink(case)
        del self.alerts[alert.id]
        self._out.alerts[alert.id] = alert
        if not quiet:
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


def _shared(alert: Alert) -> bool:
    """Whether an alert holds many cases: a fleet's, or a station's summary of faults beyond its cap."""
    return alert.problem in FLEETS.values() or (alert.problem is Problem.FAULT and alert.component is None)


def _fleet_key(case: Case) -> FleetKey | None:
    fleet = FLEETS.get(case.problem)
    return (fleet, case.component, case.code) if fleet is not None else None


def _title(problem: Problem, station: str, component: str | None, code: str | None, count: int) -> str:
    return {Problem.LOST: f"Station {station} lost",
            Problem.FAULT: f"{station}: {component} {code}",
            Problem.FLEET_FAULT: f"{component} {code} at {count} stations",
            Problem.FLEET_LOST: f"{count} stations lost",
            Problem.HELP: f"Help call unanswered at {station}"}[problem]


def _local(moment: datetime, rules: Rules) -> str:
    return moment.astimezone(rules.bridge.timezone).strftime("%Y-%m-%d %H:%M %Z")


OBSERVERS: dict[type, Callable[[Engine, Observation | RepairSeen, datetime], None]] = {
    StatusSeen: Engine._status, FaultSeen: Engine._fault, HelpSeen: Engine._help,  # type: ignore[dict-item]
    RepairSeen: Engine._repair,  # type: ignore[dict-item]
}
