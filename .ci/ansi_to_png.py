#!/usr/bin/env python3
"""Render a terminal screen captured with `tmux capture-pane -e -p` to a PNG, cell by cell.

Usage: ansi_to_png.py CAPTURE.ans OUT.png COLS ROWS [FONT_PX]

Every character takes one cell of a fixed grid, in DejaVu Sans Mono (Debian: fonts-dejavu-core).
SGR attributes are followed as a terminal does (they carry over line ends in tmux's output):
16 and 256 colours and 24-bit colour, bold, dim, italic, underline, reverse, crossed out. Block
elements (full, shades, eighths) and the light horizontal line are drawn as shapes rather than
glyphs, as most terminals do, so bars and rules join without gaps.
"""

import re
import sys
import unicodedata

from PIL import Image, ImageDraw, ImageFont

FONT_DIR = "/usr/share/fonts/truetype/dejavu"
BACKGROUND = (24, 26, 31)
FOREGROUND = (212, 214, 218)
# The 16 base colours: a dark theme close to common terminal defaults.
BASE16 = [
    (40, 42, 46), (222, 82, 82), (92, 196, 92), (224, 188, 72),
    (84, 140, 232), (196, 110, 220), (70, 192, 204), (200, 202, 206),
    (118, 122, 130), (255, 110, 110), (120, 230, 120), (255, 220, 100),
    (120, 170, 255), (226, 140, 250), (100, 224, 236), (250, 250, 250),
]
MARGIN = 14
SGR = re.compile(r"\x1b\[([0-9;:]*)m")
OTHER_ESCAPE = re.compile(r"\x1b(\[[0-9;?]*[A-Za-z]|\][^\x07]*\x07|[()][0-9A-Za-z])")


def xterm256(n):
    if n < 16:
        return BASE16[n]
    if n < 232:
        n -= 16
        level = [0, 95, 135, 175, 215, 255]
        return (level[n // 36], level[(n // 6) % 6], level[n % 6])
    g = 8 + 10 * (n - 232)
    return (g, g, g)


class Style:
    def __init__(self):
        self.reset()

    def reset(self):
        self.fg = None
        self.bg = None
        self.bold = self.dim = self.italic = self.underline = False
        self.reverse = self.strike = False

    def copy(self):
        s = Style()
        s.__dict__.update(self.__dict__)
        return s

    def apply(self, params):
        codes = [int(p) if p else 0 for p in re.split(r"[;:]", params)] if params else [0]
        i = 0
        while i < len(codes):
            c = codes[i]
            if c == 0:
                self.reset()
            elif c == 1:
                self.bold = True
            elif c == 2:
                self.dim = True
            elif c == 3:
                self.italic = True
            elif c == 4:
                self.underline = True
            elif c == 7:
                self.reverse = True
            elif c == 9:
                self.strike = True
            elif c == 22:
                self.bold = self.dim = False
            elif c == 23:
                self.italic = False
            elif c == 24:
                self.underline = False
            elif c == 27:
                self.reverse = False
            elif c == 29:
                self.strike = False
            elif 30 <= c <= 37:
                self.fg = BASE16[c - 30]
            elif 90 <= c <= 97:
                self.fg = BASE16[c - 90 + 8]
            elif c == 39:
                self.fg = None
            elif 40 <= c <= 47:
                self.bg = BASE16[c - 40]
            elif 100 <= c <= 107:
                self.bg = BASE16[c - 100 + 8]
            elif c == 49:
                self.bg = None
            elif c in (38, 48) and i + 1 < len(codes):
                if codes[i + 1] == 5 and i + 2 < len(codes):
                    colour = xterm256(codes[i + 2])
                    i += 2
                elif codes[i + 1] == 2 and i + 4 < len(codes):
                    colour = tuple(codes[i + 2 : i + 5])
                    i += 4
                else:
                    colour = None
                if c == 38:
                    self.fg = colour
                else:
                    self.bg = colour
            i += 1

    def colours(self):
        fg = self.fg or FOREGROUND
        bg = self.bg or BACKGROUND
        if self.reverse:
            fg, bg = bg, fg
        if self.dim:
            fg = blend(fg, bg, 0.6)
        return fg, bg


def blend(fg, bg, share):
    return tuple(round(f * share + b * (1 - share)) for f, b in zip(fg, bg))


def parse(text, cols, rows):
    """The screen as rows of (char, Style) cells."""
    grid = [[(" ", Style())] * cols for _ in range(rows)]
    style = Style()
    for y, line in enumerate(text.split("\n")[:rows]):
        x = 0
        pos = 0
        while pos < len(line):
            m = SGR.match(line, pos)
            if m:
                style.apply(m.group(1))
                pos = m.end()
                continue
            m = OTHER_ESCAPE.match(line, pos)
            if m:
                pos = m.end()
                continue
            ch = line[pos]
            pos += 1
            if ch == "\r" or unicodedata.combining(ch):
                continue
            if x < cols:
                grid[y][x] = (ch, style.copy())
            x += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return grid


SHADES = {"█": 1.0, "▓": 0.75, "▒": 0.5, "░": 0.25}


def draw_block(draw, ch, x, y, w, h, fg, bg):
    """Draw block elements and the light horizontal rule as shapes; False for anything else."""
    if ch in SHADES:
        draw.rectangle([x, y, x + w - 1, y + h - 1], fill=blend(fg, bg, SHADES[ch]))
        return True
    code = ord(ch)
    if 0x2581 <= code <= 0x2587:  # lower one..seven eighths
        top = y + h - round(h * (code - 0x2580) / 8)
        draw.rectangle([x, top, x + w - 1, y + h - 1], fill=fg)
        return True
    if 0x2589 <= code <= 0x258F:  # left seven..one eighths
        width = round(w * (0x2590 - code) / 8)
        draw.rectangle([x, y, x + max(width, 1) - 1, y + h - 1], fill=fg)
        return True
    if ch == "▀":
        draw.rectangle([x, y, x + w - 1, y + h // 2 - 1], fill=fg)
        return True
    if ch == "▐":
        draw.rectangle([x + w // 2, y, x + w - 1, y + h - 1], fill=fg)
        return True
    if ch == "─":
        mid = y + h // 2
        draw.rectangle([x, mid, x + w - 1, mid], fill=fg)
        return True
    return False


def render(grid, font_px):
    fonts = {
        (False, False): ImageFont.truetype(f"{FONT_DIR}/DejaVuSansMono.ttf", font_px),
        (True, False): ImageFont.truetype(f"{FONT_DIR}/DejaVuSansMono-Bold.ttf", font_px),
        (False, True): ImageFont.truetype(f"{FONT_DIR}/DejaVuSansMono-Oblique.ttf", font_px),
        (True, True): ImageFont.truetype(f"{FONT_DIR}/DejaVuSansMono-BoldOblique.ttf", font_px),
    }
    regular = fonts[(False, False)]
    ascent, descent = regular.getmetrics()
    cell_w = round(regular.getlength("M"))
    cell_h = ascent + descent
    rows, cols = len(grid), len(grid[0])
    img = Image.new("RGB", (cols * cell_w + 2 * MARGIN, rows * cell_h + 2 * MARGIN), BACKGROUND)
    draw = ImageDraw.Draw(img)
    for r, row in enumerate(grid):
        y = MARGIN + r * cell_h
        for c, (ch, style) in enumerate(row):
            x = MARGIN + c * cell_w
            fg, bg = style.colours()
            if bg != BACKGROUND:
                draw.rectangle([x, y, x + cell_w - 1, y + cell_h - 1], fill=bg)
            if ch != " " and not draw_block(draw, ch, x, y, cell_w, cell_h, fg, bg):
                draw.text((x, y), ch, font=fonts[(style.bold, style.italic)], fill=fg)
            if style.underline:
                draw.line([x, y + cell_h - 2, x + cell_w - 1, y + cell_h - 2], fill=fg)
            if style.strike:
                mid = y + cell_h // 2
                draw.line([x, mid, x + cell_w - 1, mid], fill=fg)
    return img


def main():
    if len(sys.argv) not in (5, 6):
        sys.exit(__doc__)
    src, out, cols, rows = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    font_px = int(sys.argv[5]) if len(sys.argv) == 6 else 14
    with open(src, encoding="utf-8") as f:
        grid = parse(f.read(), cols, rows)
    img = render(grid, font_px)
    # A palette image keeps the PNG small; the screen has far fewer than 256 colours.
    img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        out, optimize=True
    )


if __name__ == "__main__":
    main()
