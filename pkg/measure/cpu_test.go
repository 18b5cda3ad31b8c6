package measure

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

// Two samples of systemd's /proc/1/stat ten seconds apart, and a process
// whose comm holds spaces and ") (" to look like the end of field 2.
const (
	stat1Start = "1 (systemd) S 0 1 1 0 -1 4194560 1233718 52788530 148 15422 1433112 410099 272466 94105 20 0 1 0 21 175161344 3587 18446744073709551615 1 1 0 0 0 0 671173123 4096 1260 0 0 0 17 3 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
	stat1End   = "1 (systemd) S 0 1 1 0 -1 4194560 1233720 52788531 148 15422 1433142 410118 272466 94105 20 0 1 0 21 175161344 3587 18446744073709551615 1 1 0 0 0 0 671173123 4096 1260 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
	statOdd    = "4711 (a) b (c) d) R 1 4711 4711 0 -1 4194304 105 0 0 0 7 3 0 0 20 0 1 0 5000 5000000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		line         string
		utime, stime uint64
	}{
		{stat1Start, 1433112, 410099},
		{stat1End, 1433142, 410118},
		{statOdd, 7, 3},
	}
	for _, tt := range tests {
		u, s, err := ParseStat(tt.line)
		if err != nil || u != tt.utime || s != tt.stime {
			t.Errorf("ParseStat(%.30q...) = %d, %d, %v; want %d, %d", tt.line, u, s, err, tt.utime, tt.stime)
		}
	}
	for _, bad := range []string{
		"", "1 systemd S 0", "1 (systemd) S 0 1 1",
		strings.Replace(stat1Start, "1433112", "-5", 1),
		strings.Replace(stat1Start, "410099", "4x", 1),
		"1 (sys) S 0 1 1 0 -1 4 1 5 1 1 99999999999999999999999 1",
	} {
		if _, _, err := ParseStat(bad); err == nil {
			t.Errorf("ParseStat(%q) accepted", bad)
		}
	}
}

func TestCPUPercentFromStat(t *testing.T) {
	u0, s0, err := ParseStat(stat1Start)
	if err != nil {
		t.Fatal(err)
	}
	u1, s1, err := ParseStat(stat1End)
	if err != nil {
		t.Fatal(err)
	}
	// 30 + 19 ticks at 100 Hz over 10.02 s: 0.49 s of CPU, 4.89...%.
	got, err := CPUPercent(u0+s0, u1+s1, 10020*time.Millisecond, 100)
	if err != nil {
		t.Fatal(err)
	}
	if want := 100 * 0.49 / 10.02; math.Abs(got-want) > 1e-9 {
		t.Fatalf("CPUPercent = %v, want %v", got, want)
	}
}

func TestCPUPercent(t *testing.T) {
	tests := []struct {
		start, end uint64
		elapsed    time.Duration
		clk        int64
		want       float64
	}{
		{100, 100, time.Second, 100, 0},
		{100, 200, time.Second, 100, 100},     // one core, busy
		{0, 400, 2 * time.Second, 100, 200},   // two cores
		{0, 250, 10 * time.Second, 250, 10},   // CONFIG_HZ-like tick rates work too
		{0, 1, 3 * time.Second, 100, 1.0 / 3}, // full precision, no rounding
	}
	for _, tt := range tests {
		got, err := CPUPercent(tt.start, tt.end, tt.elapsed, tt.clk)
		if err != nil || math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("CPUPercent(%d, %d, %v, %d) = %v, %v; want %v", tt.start, tt.end, tt.elapsed, tt.clk, got, err, tt.want)
		}
	}
	if _, err := CPUPercent(200, 100, time.Second, 100); !errors.Is(err, ErrCounterReset) {
		t.Errorf("counter going back: %v, want ErrCounterReset", err)
	}
	for _, bad := range []struct {
		elapsed time.Duration
		clk     int64
	}{{0, 100}, {-time.Second, 100}, {time.Second, 0}, {time.Second, -100}} {
		if _, err := CPUPercent(0, 1, bad.elapsed, bad.clk); err == nil || errors.Is(err, ErrCounterReset) {
			t.Errorf("CPUPercent(elapsed %v, clk %d) = %v, want an error", bad.elapsed, bad.clk, err)
		}
	}
}
