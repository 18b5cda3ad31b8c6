package measure

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrCounterReset means a CPU counter went backwards between two samples:
// the process was replaced (PID 1 re-executed or the node rebooted), so the
// two samples do not belong to one process and no rate can be told.
var ErrCounterReset = errors.New("CPU counter went backwards (process restarted)")

// CPUPercent is the CPU a process used between two samples of its
// utime+stime, in percent of one core: ticks used / clkTck seconds over
// elapsed. It is not rounded; rounding is for display.
func CPUPercent(startTicks, endTicks uint64, elapsed time.Duration, clkTck int64) (float64, error) {
	switch {
	case elapsed <= 0:
		return 0, fmt.Errorf("elapsed time %v is not positive", elapsed)
	case clkTck <= 0:
		return 0, fmt.Errorf("clock tick rate %d is not positive", clkTck)
	case endTicks < startTicks:
		return 0, fmt.Errorf("%w: %d ticks, then %d", ErrCounterReset, startTicks, endTicks)
	}
	cpuSeconds := float64(endTicks-startTicks) / float64(clkTck)
	return 100 * cpuSeconds / elapsed.Seconds(), nil
}

// ParseStat reads utime and stime (fields 14 and 15, in clock ticks) from a
// line of /proc/PID/stat. Field 2, the comm in parentheses, may itself hold
// spaces and parentheses, so the fields are counted from the last ')'.
func ParseStat(line string) (utime, stime uint64, err error) {
	i := strings.LastIndexByte(line, ')')
	if i < 0 || !strings.Contains(line[:i], "(") {
		return 0, 0, errors.New("stat line has no (comm)")
	}
	// After the comm comes field 3 (state), so field N is rest[N-3].
	rest := strings.Fields(line[i+1:])
	if len(rest) < 13 {
		return 0, 0, fmt.Errorf("stat line has %d fields after the comm, want at least 13", len(rest))
	}
	if utime, err = strconv.ParseUint(rest[14-3], 10, 64); err != nil {
		return 0, 0, fmt.Errorf("utime: %w", err)
	}
	if stime, err = strconv.ParseUint(rest[15-3], 10, 64); err != nil {
		return 0, 0, fmt.Errorf("stime: %w", err)
	}
	return utime, stime, nil
}
