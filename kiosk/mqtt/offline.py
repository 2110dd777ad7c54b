"""The MQTT client of a station without a broker: never connected, so everything for staff stays in the outbox."""
from __future__ import annotations

from datetime import UTC, datetime

from kiosk.domain.events import LinkState

__all__ = ["OfflineClient"]


class OfflineClient:
    """Stands in for kiosk.mqtt.client.MqttClient when no broker is configured (``mqtt.host`` empty).

    It is never connected and publishes nothing: ``publish`` and ``reply`` say False, as a real
    client does while its connection is down, and the outbox keeps every row until a broker is
    configured. Its state is ``stopped``, so no watchdog restarts it.
    """

    def __init__(self) -> None:
        self._since = datetime.now(UTC)

    @property
    def connected(self) -> bool:
        """Never."""
        return False

    @property
    def state(self) -> LinkState:
        """Stopped: there is nothing to connect to."""
        return LinkState.STOPPED

    @property
    def since(self) -> datetime:
        """When the station started without a broker."""
        return self._since

    @property
    def reconnects(self) -> int:
        """None: it never connects."""
        return 0

    @property
    def address(self) -> str:
        """None: no broker is configured."""
        return ""

    @property
    def tls(self) -> bool:
        """No link at all."""
        return False

    @property
    def refused(self) -> tuple[int, str]:
        """Nothing was ever refused."""
        return 0, ""

    def publish(self, topic: str, payload: str, qos: int, retain: bool, row_id: int | None = None,
                expiry_s: int | None = None) -> bool:
        """Nothing is sent: False."""
        return False

    def reply(self, response_topic: str, correlation: bytes | None, payload: str) -> bool:
        """Nothing is sent: False."""
        return False

    def flush(self, timeout: float) -> bool:
        """Nothing waits to be written: True."""
        return True

    def offer_boot(self, boot: int) -> None:
        """No connection will use it."""

    def heartbeat_age(self) -> float:
        """No network thread runs."""
        return 0.0

    def restart(self) -> None:
        """Nothing to restart."""

    def stop(self, offline_payload: str, timeout: float = 3.0) -> None:
        """Nothing to say offline to."""
