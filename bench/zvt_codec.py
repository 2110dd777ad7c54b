"""ZVT codec throughput: frame encode, incremental decode, APDU decode and message parsing per frame."""
from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

import common

from drivers.payment.zvt.codec import Apdu, Tlv, bcd_encode, decode_bmps, encode_bmp, encode_tlv
from drivers.payment.zvt.link import Frame, FrameDecoder, encode_frame
from drivers.payment.zvt.messages import EUR, PAYMENT_TYPE_PT_DECIDES, authorization, parse_status_information

FRAMES = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
RUNS = 5


def approved_status_information() -> bytes:
    """A 04 0F as a terminal sends it for an approved 12.50 EUR contactless payment."""
    texts = encode_tlv([Tlv(0x24, b"", (Tlv(0x07, b"Zahlung erfolgt"), Tlv(0x07, b"Bitte Ware entnehmen")))])
    fields = [
        (0x27, b"\x00"), (0x04, bcd_encode(1250, 6)), (0x0B, bcd_encode(1042, 3)), (0x0C, bcd_encode(143015, 3)),
        (0x0D, bcd_encode(105, 2)), (0x0E, bcd_encode(2812, 2)), (0x17, bcd_encode(1, 2)), (0x19, b"\x40"),
        (0x22, bytes.fromhex("679999EEEEEE1234")), (0x29, bcd_encode(52500038, 4)), (0x3B, b"A1B2C3\x00\x00"),
        (0x49, bcd_encode(EUR, 2)), (0x87, bcd_encode(1042, 2)), (0x88, bcd_encode(1010, 3)), (0x8A, b"\x05"),
        (0x8B, b"Visa\x00"), (0x06, texts),
    ]
    return Apdu(0x04, 0x0F, b"".join(encode_bmp(bmp, value) for bmp, value in fields)).encode()


def round_trip_status(apdu: bytes) -> Callable[[], None]:
    """One received status information: frame it, decode it as the line delivers it, parse it."""
    def run() -> None:
        [frame] = FrameDecoder().feed(encode_frame(apdu), 0.0)
        assert isinstance(frame, Frame)
        parse_status_information(Apdu.decode(frame.apdu).data)
    return run


def round_trip_authorization(amount: int) -> Callable[[], None]:
    """One sent authorization: build it, frame it, decode it as the PT would."""
    def run() -> None:
        apdu = authorization(amount, EUR, PAYMENT_TYPE_PT_DECIDES, 60)
        [frame] = FrameDecoder().feed(encode_frame(apdu), 0.0)
        assert isinstance(frame, Frame)
        decode_bmps(Apdu.decode(frame.apdu).data)
    return run


def measure(name: str, size: int, run: Callable[[], None]) -> None:
    """Print frames/s (median of the runs) and per-frame median and p99 in microseconds."""
    rates: list[float] = []
    samples_us: list[float] = []
    clock = time.perf_counter_ns
    for _ in range(RUNS):
        began = clock()
        for _ in range(FRAMES):
            start = clock()
            run()
            samples_us.append((clock() - start) / 1000)
        rates.append(FRAMES / ((clock() - began) / 1e9))
    print(f"{name} ({size} bytes): {statistics.median(rates):,.0f} frames/s; per frame median "
          f"{statistics.median(samples_us):.1f} µs, p99 {common.percentile(samples_us, 0.99):.1f} µs")


def main() -> None:
    """Print the figures."""
    status = approved_status_information()
    print(f"{RUNS} runs of {FRAMES} frames each")
    measure("04 0F status information: encode_frame + feed + Apdu.decode + parse", len(status),
            round_trip_status(status))
    measure("06 01 authorization: build + encode_frame + feed + Apdu.decode + decode_bmps",
            len(authorization(1250, EUR, PAYMENT_TYPE_PT_DECIDES, 60)), round_trip_authorization(1250))


if __name__ == "__main__":
    main()
