"""baresip's configuration folder written from the station's voice settings: config, accounts, nothing else."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from kiosk.config import VoiceSettings

__all__ = ["MODULE_PATH", "SOUNDS", "BaresipFiles", "PasswordUnusable", "account_line", "config_text", "dial_uri",
           "write_folder"]

MODULE_PATH = "/usr/lib/baresip/modules"  # Debian's baresip-core (12 and 13, every architecture)
SOUNDS = "/usr/share/baresip"  # ringback while the agents' phone rings, ring when an agent calls back
CODEC_MODULES = {"opus": "opus.so", "G722": "g722.so", "PCMA": "g711.so", "PCMU": "g711.so"}
MEDIA_ENCRYPTION = {"optional": "srtp", "required": "srtp-mand"}
RTP_TIMEOUT_S = 30
_UNSAFE_IN_ACCOUNT = re.compile(r"[\s;<>\"',]")


class PasswordUnusable(ValueError):
    """The SIP password cannot be read or cannot be written into baresip's account line; the message says why."""


@dataclass(frozen=True)
class BaresipFiles:
    """What the station writes for one baresip: its folder and the control port it listens on."""

    folder: Path
    control_port: int


def dial_uri(voice: VoiceSettings, ticket_id: str, station_id: str) -> str:
    """The URI the station dials: the destination, naming the ticket and the station in URI parameters.

    They arrive in the INVITE's request line and its To header (baresip 1.0 and 1.1 cannot add
    headers of their own), where a PBX or a softphone can read them (docs/help-desk.md).
    """
    uri, question, headers = voice.destination.partition("?")
    return f"{uri};x-kiosk-ticket={ticket_id};x-kiosk-station={_param(station_id)}{question}{headers}"


def account_line(voice: VoiceSettings, station_id: str, password: str) -> str:
    """The accounts file's one line: the station's SIP identity, its registration, codecs and media encryption."""
    if _UNSAFE_IN_ACCOUNT.search(password):
        raise PasswordUnusable("the SIP password has a space or one of ; < > \" ' , which baresip's account line "
                               "cannot carry")
    user = voice.user or _param(station_id)
    if voice.registrar:
        host = voice.registrar.split(":", 1)[1].split(";", 1)[0].split("?", 1)[0].rpartition("@")[2]
    else:
        host = voice.listen.rsplit(":", 1)[0]
        host = "127.0.0.1" if host == "0.0.0.0" else host
    params = [f"audio_codecs={','.join(voice.codecs)}", "answermode=manual",
              "regint=3600" if voice.registrar else "regint=0"]
    if password:
        params.append(f"auth_pass={password}")
    if voice.srtp in MEDIA_ENCRYPTION:
        params.append(f"mediaenc={MEDIA_ENCRYPTION[voice.srtp]}")
    name = station_id.replace('"', "")
    return f'"{name}" <sip:{user}@{host};transport={voice.transport}>;' + ";".join(params)


def config_text(voice: VoiceSettings) -> str:
    """baresip's config file: SIP and control listeners, the modules the settings need, audio, one call at a time."""
    modules = dict.fromkeys([CODEC_MODULES[codec] for codec in voice.codecs]
                            + [f"{device.split(',', 1)[0]}.so" for device in (voice.audio_source, voice.audio_player)]
                            + (["srtp.so"] if voice.srtp in MEDIA_ENCRYPTION else []))
    lines = [
        ("poll_method", "epoll"),
        ("sip_listen", voice.listen),
        ("call_max_calls", "1"),  # a second caller hears busy from baresip itself
        ("module_path", MODULE_PATH),
        *(("module", name) for name in modules),
        ("module_app", "account.so"),
        ("module_app", "menu.so"),
        ("module_app", "ctrl_tcp.so"),
        ("ctrl_tcp_listen", f"127.0.0.1:{voice.control_port}"),
        ("audio_path", SOUNDS),
        ("audio_source", voice.audio_source),
        ("audio_player", voice.audio_player),
        ("audio_alert", voice.audio_player),
        ("rtp_ports", voice.rtp_ports),
        ("rtp_timeout", str(RTP_TIMEOUT_S)),  # a call whose audio stopped (no BYE: the network went) is closed
    ]
    if voice.audio_source.split(",", 1)[0] == "ausine":  # a test tone instead of a microphone: 48 kHz stereo only
        lines += [("ausrc_srate", "48000"), ("ausrc_channels", "2")]
    host = voice.listen.rsplit(":", 1)[0]
    if host.startswith("127."):  # loopback only (a bench or a test): media on loopback too
        lines.append(("net_interface", host))
    return "".join(f"{key}\t\t{value}\n" for key, value in lines)


def write_folder(folder: Path, voice: VoiceSettings, station_id: str) -> BaresipFiles:
    """Write baresip's folder afresh (only the owner may read it: it holds the SIP password); PasswordUnusable if
    the password file cannot be read or its password not written."""
    password = ""
    if voice.password_file:
        try:
            password = Path(voice.password_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise PasswordUnusable(f"cannot read voice.password_file {voice.password_file}: {exc}") from exc
    account = account_line(voice, station_id, password)
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    for name, text in (("config", config_text(voice)), ("accounts", account + "\n")):
        path = folder / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
    return BaresipFiles(folder, voice.control_port)


def _param(text: str) -> str:
    """Text safe in a SIP URI parameter (station ids are letters, digits, - and _ already)."""
    return re.sub(r"[^A-Za-z0-9_.!~*'()-]", "-", text)
