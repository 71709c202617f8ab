package main

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"time"
)

// Narrower than time.ParseDuration on purpose: every runner must parse the
// same grammar, and "1h30m" or "1.5s" would be a burden in C for no gain.
var durationRE = regexp.MustCompile(`^(-?[0-9]+)(ns|us|ms|s|m|h)$`)

var units = map[string]time.Duration{
	"ns": time.Nanosecond,
	"us": time.Microsecond,
	"ms": time.Millisecond,
	"s":  time.Second,
	"m":  time.Minute,
	"h":  time.Hour,
}

func parseDuration(tok string) (time.Duration, error) {
	m := durationRE.FindStringSubmatch(tok)
	if m == nil {
		return 0, fmt.Errorf("bad duration %q", tok)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	unit := units[m[2]]
	if err != nil || n > math.MaxInt64/int64(unit) || n < math.MinInt64/int64(unit) {
		return 0, fmt.Errorf("duration out of range %q", tok)
	}
	return time.Duration(n) * unit, nil
}
