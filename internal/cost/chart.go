package cost

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Chart is a line chart drawn as a self-contained SVG document: no scripts, no external
// fonts or stylesheets, so it can be written to a file or inlined in an HTML report.
// It is plain data; build one and call WriteSVG.
type Chart struct {
	Title  string
	XLabel string
	YLabel string
	Width  int // pixels; 0 means 800
	Height int // pixels; 0 means 500

	Series  []Series
	Markers []Marker

	// XFormat and YFormat label the ticks; nil prints the number.
	XFormat func(float64) string
	YFormat func(float64) string
	// XMin and YMin are the axis origins (usually 0); the maxima are fitted to the data.
	XMin, YMin float64
}

// Series is one line of a chart.
type Series struct {
	Name   string
	Color  string // any SVG colour; "" picks one
	Dashed bool
	Step   bool // draw as steps (value holds until the next point)
	Points []Point
}

// Point is one (x, y) sample.
type Point struct{ X, Y float64 }

// Marker is a vertical line at X with a label, and a dot at Y when HasY is set.
type Marker struct {
	X     float64
	Y     float64
	HasY  bool
	Label string
	Color string
}

var palette = []string{"#d62728", "#9467bd", "#1f77b4", "#2ca02c", "#ff7f0e", "#8c564b"}

// WriteSVG renders the chart.
func (c Chart) WriteSVG(out io.Writer) error {
	w := bufio.NewWriter(out)
	width, height := c.Width, c.Height
	if width == 0 {
		width = 800
	}
	if height == 0 {
		height = 500
	}
	rows := (len(c.Series) + 1) / 2
	left, right, top := 90.0, 30.0, 50.0
	bottom := 70.0 + 22*float64(rows)
	pw, ph := float64(width)-left-right, float64(height)-top-bottom
	if pw < 50 || ph < 50 {
		return fmt.Errorf("chart %d×%d px is too small", width, height)
	}

	xmax, ymax := c.XMin, c.YMin
	for _, s := range c.Series {
		for _, p := range s.Points {
			if finite(p.X) && p.X > xmax {
				xmax = p.X
			}
			if finite(p.Y) && p.Y > ymax {
				ymax = p.Y
			}
		}
	}
	for _, m := range c.Markers {
		if finite(m.X) && m.X > xmax {
			xmax = m.X
		}
	}
	xticks := niceTicks(c.XMin, xmax, 6)
	yticks := niceTicks(c.YMin, ymax, 6)
	x0, x1 := xticks[0], xticks[len(xticks)-1]
	y0, y1 := yticks[0], yticks[len(yticks)-1]
	sx := func(x float64) float64 { return left + (x-x0)/(x1-x0)*pw }
	sy := func(y float64) float64 { return top + ph - (y-y0)/(y1-y0)*ph }
	xf, yf := c.XFormat, c.YFormat
	if xf == nil {
		xf = formatNumber
	}
	if yf == nil {
		yf = formatNumber
	}

	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(w, `<title>%s</title>`+"\n", esc(c.Title))
	fmt.Fprintf(w, `<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>`+"\n", width, height)
	fmt.Fprintf(w, `<text x="%s" y="28" text-anchor="middle" font-size="16" font-weight="bold">%s</text>`+"\n", f1(float64(width)/2), esc(c.Title))

	// Grid and ticks.
	for _, t := range yticks {
		y := sy(t)
		fmt.Fprintf(w, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#e5e5e5"/>`+"\n", f1(left), f1(y), f1(left+pw), f1(y))
		fmt.Fprintf(w, `<text x="%s" y="%s" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n", f1(left-8), f1(y), esc(yf(t)))
	}
	for _, t := range xticks {
		x := sx(t)
		fmt.Fprintf(w, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#e5e5e5"/>`+"\n", f1(x), f1(top), f1(x), f1(top+ph))
		fmt.Fprintf(w, `<text x="%s" y="%s" text-anchor="middle">%s</text>`+"\n", f1(x), f1(top+ph+18), esc(xf(t)))
	}
	fmt.Fprintf(w, `<rect x="%s" y="%s" width="%s" height="%s" fill="none" stroke="#333333"/>`+"\n", f1(left), f1(top), f1(pw), f1(ph))
	fmt.Fprintf(w, `<text x="%s" y="%s" text-anchor="middle">%s</text>`+"\n", f1(left+pw/2), f1(top+ph+40), esc(c.XLabel))
	fmt.Fprintf(w, `<text transform="translate(18 %s) rotate(-90)" text-anchor="middle">%s</text>`+"\n", f1(top+ph/2), esc(c.YLabel))

	// Series, clipped to the plot area.
	fmt.Fprintf(w, `<clipPath id="plot"><rect x="%s" y="%s" width="%s" height="%s"/></clipPath>`+"\n", f1(left), f1(top), f1(pw), f1(ph))
	fmt.Fprintln(w, `<g clip-path="url(#plot)" fill="none" stroke-width="2.5">`)
	for i, s := range c.Series {
		color := seriesColor(s.Color, i)
		var pts []string
		for j, p := range s.Points {
			if !finite(p.X) || !finite(p.Y) {
				continue
			}
			if s.Step && j > 0 && len(pts) > 0 {
				pts = append(pts, f1(sx(p.X))+","+f1(sy(s.Points[j-1].Y)))
			}
			pts = append(pts, f1(sx(p.X))+","+f1(sy(p.Y)))
		}
		if len(pts) == 0 {
			continue
		}
		dash := ""
		if s.Dashed {
			dash = ` stroke-dasharray="8 5"`
		}
		fmt.Fprintf(w, `<polyline stroke="%s"%s points="%s"><title>%s</title></polyline>`+"\n", esc(color), dash, strings.Join(pts, " "), esc(s.Name))
	}
	fmt.Fprintln(w, `</g>`)

	// Markers.
	for k, m := range c.Markers {
		if !finite(m.X) || m.X < x0 || m.X > x1 {
			continue
		}
		color := m.Color
		if color == "" {
			color = "#444444"
		}
		x := sx(m.X)
		fmt.Fprintf(w, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="1.5" stroke-dasharray="4 4"/>`+"\n", f1(x), f1(top), f1(x), f1(top+ph), esc(color))
		if m.HasY && finite(m.Y) {
			fmt.Fprintf(w, `<circle cx="%s" cy="%s" r="5" fill="%s"/>`+"\n", f1(x), f1(sy(m.Y)), esc(color))
		}
		anchor, dx := "start", 5.0
		if x > left+pw*0.7 {
			anchor, dx = "end", -5
		}
		fmt.Fprintf(w, `<text x="%s" y="%s" text-anchor="%s" fill="%s" stroke="#ffffff" stroke-width="4" paint-order="stroke">%s</text>`+"\n", f1(x+dx), f1(top+16+16*float64(k)), anchor, esc(color), esc(m.Label))
	}

	// Legend, two columns under the x-axis label.
	ly := top + ph + 62
	for i, s := range c.Series {
		col, row := i%2, i/2
		lx := left + float64(col)*pw/2
		y := ly + float64(row)*22
		dash := ""
		if s.Dashed {
			dash = ` stroke-dasharray="8 5"`
		}
		fmt.Fprintf(w, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="2.5"%s/>`+"\n", f1(lx), f1(y), f1(lx+28), f1(y), esc(seriesColor(s.Color, i)), dash)
		fmt.Fprintf(w, `<text x="%s" y="%s" dominant-baseline="middle">%s</text>`+"\n", f1(lx+36), f1(y), esc(s.Name))
	}
	fmt.Fprintln(w, `</svg>`)
	return w.Flush()
}

func seriesColor(c string, i int) string {
	if c != "" {
		return c
	}
	return palette[i%len(palette)]
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func f1(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// niceTicks returns evenly spaced round tick values covering [lo, hi], about n of them.
func niceTicks(lo, hi float64, n int) []float64 {
	if !finite(lo) {
		lo = 0
	}
	if !finite(hi) || hi <= lo {
		hi = lo + 1
	}
	step := niceStep((hi - lo) / float64(n))
	start := math.Floor(lo/step) * step
	var ticks []float64
	for v := start; ; v += step {
		// Avoid -0 and accumulated error in labels.
		r := math.Round(v/step) * step
		ticks = append(ticks, r)
		if r >= hi-step*1e-9 || len(ticks) > 100 {
			break
		}
	}
	return ticks
}

func niceStep(raw float64) float64 {
	if raw <= 0 || !finite(raw) {
		return 1
	}
	exp := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if raw <= m*exp {
			return m * exp
		}
	}
	return 10 * exp
}

func formatNumber(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return GroupThousands(strconv.FormatFloat(f, 'f', 0, 64))
	}
	return strconv.FormatFloat(f, 'g', 4, 64)
}

// FormatDollars labels a money axis: 1500 → "$1,500", 2.5 → "$2.50".
func FormatDollars(f float64) string {
	if f == math.Trunc(f) {
		return "$" + formatNumber(f)
	}
	return "$" + GroupThousands(strconv.FormatFloat(f, 'f', 2, 64))
}
