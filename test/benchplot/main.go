// Command benchplot draws docs/bench/scale.png from the raw `go test -bench`
// output of BenchmarkVerify and BenchmarkStatus: wall time and API requests
// per run against the node count, for verify and status. `make
// bench-verify` and `make bench-status` run it after their benchmark; a
// missing input file leaves its command out of the graph.
//
//	go run ./test/benchplot -verify .cache/bench-verify.txt -status .cache/bench-status.txt -o docs/bench/scale.png
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"image/color"
	"io/fs"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// point is one benchmark line: the node count, the wall time of one run
// in seconds, and the API requests of one run.
type point struct {
	nodes    float64
	wall     float64
	requests float64
}

// series is one line of the graph.
type series struct {
	name   string
	color  color.RGBA
	points []point
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(-\d+)?\s+\d+\s+(.*)$`)

// readBench returns the metrics of each benchmark line of a raw output by
// benchmark name (the -N suffix cut).
func readBench(path string) (map[string]map[string]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]map[string]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		fields := strings.Fields(m[3])
		metrics := map[string]float64{}
		for i := 0; i+1 < len(fields); i += 2 {
			if v, err := strconv.ParseFloat(fields[i], 64); err == nil {
				metrics[fields[i+1]] = v
			}
		}
		out[m[1]] = metrics
	}
	return out, sc.Err()
}

var nodesPart = regexp.MustCompile(`/nodes=(\d+)/`)

func nodesOf(name string) (float64, bool) {
	m := nodesPart.FindStringSubmatch(name + "/")
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(m[1], 64)
	return v, err == nil
}

func verifySeries(path string) ([]series, error) {
	bench, err := readBench(path)
	if err != nil {
		return nil, err
	}
	s := series{name: "verify --all-nodes (1 s pods)", color: color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}}
	for name, m := range bench {
		n, ok := nodesOf(name)
		if !ok || !strings.HasPrefix(name, "BenchmarkVerify/nodes=") {
			continue
		}
		s.points = append(s.points, point{nodes: n, wall: m["wall-s"], requests: m["requests"]})
	}
	return []series{s}, nil
}

func statusSeries(path string) ([]series, error) {
	bench, err := readBench(path)
	if err != nil {
		return nil, err
	}
	table := series{name: "status", color: color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}}
	wide := series{name: "status -o wide", color: color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}}
	for name, m := range bench {
		n, ok := nodesOf(name)
		if !ok || !strings.HasPrefix(name, "BenchmarkStatus/nodes=") || !strings.Contains(name, "/old-rendered=0/") {
			continue
		}
		p := point{nodes: n, wall: m["ns/op"] / 1e9, requests: m["requests/op"]}
		switch {
		case strings.HasSuffix(name, "/output=table"):
			table.points = append(table.points, p)
		case strings.HasSuffix(name, "/output=wide"):
			wide.points = append(wide.points, p)
		}
	}
	return []series{table, wide}, nil
}

func newPlot(title, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "nodes"
	p.Y.Label.Text = y
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker = plot.ConstantTicks([]plot.Tick{{Value: 50, Label: "50"}, {Value: 500, Label: "500"}, {Value: 2000, Label: "2000"}, {Value: 5000, Label: "5000"}})
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Add(plotter.NewGrid())
	p.Legend.Top, p.Legend.Left = true, true
	return p
}

func addLine(p *plot.Plot, s series, value func(point) float64) error {
	sort.Slice(s.points, func(i, j int) bool { return s.points[i].nodes < s.points[j].nodes })
	xy := make(plotter.XYs, 0, len(s.points))
	for _, pt := range s.points {
		if v := value(pt); v > 0 { // a log scale has no room for 0
			xy = append(xy, plotter.XY{X: pt.nodes, Y: v})
		}
	}
	if len(xy) == 0 {
		return nil
	}
	l, pts, err := plotter.NewLinePoints(xy)
	if err != nil {
		return err
	}
	l.Color, pts.Color = s.color, s.color
	l.Width = vg.Points(1.5)
	p.Add(l, pts)
	p.Legend.Add(s.name, l, pts)
	return nil
}

func run(verifyPath, statusPath, outPath string) error {
	var all []series
	for _, in := range []struct {
		path string
		read func(string) ([]series, error)
	}{{verifyPath, verifySeries}, {statusPath, statusSeries}} {
		if in.path == "" {
			continue
		}
		s, err := in.read(in.path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		all = append(all, s...)
	}
	if len(all) == 0 {
		return errors.New("no benchmark output to plot")
	}
	wall := newPlot("Wall time of one run", "seconds (log)")
	reqs := newPlot("API requests of one run", "requests (log)")
	for _, s := range all {
		if err := addLine(wall, s, func(p point) float64 { return p.wall }); err != nil {
			return err
		}
		if err := addLine(reqs, s, func(p point) float64 { return p.requests }); err != nil {
			return err
		}
	}
	const width, height = 11 * vg.Inch, 4 * vg.Inch
	img := vgimg.New(width, height)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Inch / 4, PadTop: vg.Inch / 8, PadBottom: vg.Inch / 8, PadLeft: vg.Inch / 8, PadRight: vg.Inch / 8}
	canvases := plot.Align([][]*plot.Plot{{wall, reqs}}, tiles, dc)
	wall.Draw(canvases[0][0])
	reqs.Draw(canvases[0][1])
	f, err := os.Create(outPath)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func main() {
	verifyPath := flag.String("verify", "", "raw output of BenchmarkVerify")
	statusPath := flag.String("status", "", "raw output of BenchmarkStatus")
	outPath := flag.String("o", "docs/bench/scale.png", "PNG to write")
	flag.Parse()
	if err := run(*verifyPath, *statusPath, *outPath); err != nil {
		fmt.Fprintln(os.Stderr, "benchplot:", err)
		os.Exit(1)
	}
}
