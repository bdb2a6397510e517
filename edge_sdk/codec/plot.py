"""Rate-distortion plot as a PNG, drawn with Pillow only (no matplotlib needed).

Two panels, PSNR-RGB and MS-SSIM (dB) against bpp; one colour per method, one point per
target rate (the means over images), joined in rate order.
"""

from __future__ import annotations

from pathlib import Path

PANEL_W, PANEL_H, MARGIN = 520, 380, 60
COLOURS = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
)
PANELS = (("psnr-rgb", "PSNR-RGB (dB)"), ("ms-ssim-db", "MS-SSIM (dB)"))


def _nice_ticks(lo: float, hi: float, count: int = 5) -> list:
    """About ``count`` round tick values covering lo..hi."""
    span = max(hi - lo, 1e-9)
    raw = span / count
    mag = 10 ** int(f"{raw:e}".split("e")[1])
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = step * int(lo / step)
    ticks, t = [], start
    while t <= hi + 1e-9:
        if t >= lo - 1e-9:
            ticks.append(round(t, 10))
        t += step
    return ticks


def _panel(draw, font, origin: tuple, series: list, key: str, label: str) -> None:
    ox, oy = origin
    xs = [x for s in series for x in s["bpp"]]
    ys = [y for s in series for y in s[key]]
    x_lo, x_hi = 0.0, max(xs) * 1.1 if xs else 1.0
    y_lo, y_hi = (min(ys) - 1, max(ys) + 1) if ys else (0.0, 1.0)
    left, top, right, bottom = ox + MARGIN, oy + 20, ox + PANEL_W - 10, oy + PANEL_H - 40

    def to_px(x: float, y: float) -> tuple:
        return (
            left + (x - x_lo) / (x_hi - x_lo) * (right - left),
            bottom - (y - y_lo) / (y_hi - y_lo) * (bottom - top),
        )

    draw.rectangle([left, top, right, bottom], outline=(0, 0, 0))
    for t in _nice_ticks(x_lo, x_hi):
        px, _ = to_px(t, y_lo)
        draw.line([px, bottom, px, bottom + 4], fill=(0, 0, 0))
        draw.text((px - 10, bottom + 6), f"{t:g}", fill=(0, 0, 0), font=font)
    for t in _nice_ticks(y_lo, y_hi):
        _, py = to_px(x_lo, t)
        draw.line([left - 4, py, left, py], fill=(0, 0, 0))
        draw.text((ox + 8, py - 6), f"{t:g}", fill=(0, 0, 0), font=font)
    draw.text(((left + right) // 2 - 10, bottom + 22), "bpp", fill=(0, 0, 0), font=font)
    draw.text((left + 4, oy + 4), label, fill=(0, 0, 0), font=font)
    for i, s in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        points = [to_px(x, y) for x, y in sorted(zip(s["bpp"], s[key]))]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        for px, py in points:
            draw.ellipse([px - 4, py - 4, px + 4, py + 4], fill=colour)


def rd_plot(result: dict, path) -> Path:
    """Write the RD plot of a :func:`edge_sdk.codec.evaluate.run_eval` result to ``path`` (PNG)."""
    from PIL import Image, ImageDraw, ImageFont

    series = [{"name": m["name"], **m["results"]} for m in result["methods"]]
    legend_h = 18 * len(series) + 10
    img = Image.new("RGB", (PANEL_W * len(PANELS), PANEL_H + legend_h), (255, 255, 255))
    draw, font = ImageDraw.Draw(img), ImageFont.load_default()
    for i, (key, label) in enumerate(PANELS):
        _panel(draw, font, (i * PANEL_W, 0), series, key, label)
    for i, s in enumerate(series):
        y = PANEL_H + 4 + 18 * i
        draw.rectangle([MARGIN, y + 3, MARGIN + 12, y + 13], fill=COLOURS[i % len(COLOURS)])
        draw.text((MARGIN + 20, y), s["name"], fill=(0, 0, 0), font=font)
    out = Path(path)
    img.save(out, format="PNG")
    return out
