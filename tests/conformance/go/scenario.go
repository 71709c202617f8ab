package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync/atomic"
	"time"
)

// scenario is the state of one running scenario; nothing outlives it.
type scenario struct {
	t0       time.Time
	ctxs     map[string]*node
	afters   map[string]*afterFunc
	keys     map[string]*key
	releases []context.CancelFunc // every cancel function created, run when the scenario ends
}

type node struct {
	ctx         context.Context
	cancel      context.CancelFunc      // nil if the context has none
	cancelCause context.CancelCauseFunc // set only for with_cancel_cause
}

// key is a value key. It must not be zero-sized: Go may give every pointer
// to a zero-sized value the same address, and keys must differ by identity.
type key struct{ name string }

type afterFunc struct {
	stop func() bool
	runs atomic.Int32
	ran  chan struct{} // closed on the first run
}

var identRE = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

// Other runners act on these prefixes; the Go runner has one language only.
var langPrefixes = map[string]bool{"@c": true, "@py": true, "@node": true}

// run executes one scenario, printing a line per observation, and stops at
// the first step that cannot be performed.
func run(name, src string, out io.Writer) {
	s := &scenario{
		t0:     time.Now(),
		ctxs:   map[string]*node{},
		afters: map[string]*afterFunc{},
		keys:   map[string]*key{},
	}
	defer s.release()
	for i, line := range strings.Split(src, "\n") {
		toks := strings.Fields(line)
		if len(toks) == 0 || strings.HasPrefix(toks[0], "#") {
			continue
		}
		prefix := ""
		if strings.HasPrefix(toks[0], "@") {
			prefix, toks = toks[0], toks[1:]
		}
		result, observed, err := s.step(prefix, toks)
		switch {
		case err != nil:
			fmt.Fprintf(out, "%s:%d %s => error:%v\n", name, i+1, strings.Join(toks, " "), err)
			return
		case observed:
			fmt.Fprintf(out, "%s:%d %s => %s\n", name, i+1, strings.Join(toks, " "), result)
		}
	}
}

func (s *scenario) step(prefix string, toks []string) (result string, observed bool, err error) {
	if prefix != "" && !langPrefixes[prefix] {
		return "", false, fmt.Errorf("unknown prefix %s", prefix)
	}
	if len(toks) == 0 {
		return "", false, errors.New("missing operation")
	}
	o, ok := ops[toks[0]]
	if !ok {
		return "", false, fmt.Errorf("unknown operation %s", toks[0])
	}
	args := toks[1:]
	if len(args) < o.minArgs || len(args) > o.maxArgs {
		return "", false, fmt.Errorf("%s takes %d to %d arguments", toks[0], o.minArgs, o.maxArgs)
	}
	result, err = o.run(s, args)
	return result, o.observe, err
}

// release frees timers; afterwards nothing in the scenario is observed again.
func (s *scenario) release() {
	for _, cancel := range s.releases {
		cancel()
	}
}

func (s *scenario) ctx(name string) (*node, error) {
	n, ok := s.ctxs[name]
	if !ok {
		return nil, fmt.Errorf("unknown context %s", name)
	}
	return n, nil
}

func (s *scenario) define(name string, n *node) error {
	// Released even if rejected below, so its timer cannot outlive the scenario.
	if n.cancel != nil {
		s.releases = append(s.releases, n.cancel)
	}
	if !identRE.MatchString(name) {
		return fmt.Errorf("bad name %q", name)
	}
	if _, dup := s.ctxs[name]; dup {
		return fmt.Errorf("context %s already exists", name)
	}
	s.ctxs[name] = n
	return nil
}

func (s *scenario) key(name string) (*key, error) {
	if !identRE.MatchString(name) {
		return nil, fmt.Errorf("bad key %q", name)
	}
	k, ok := s.keys[name]
	if !ok {
		k = &key{name}
		s.keys[name] = k
	}
	return k, nil
}

func (s *scenario) afterFunc(name string) (*afterFunc, error) {
	a, ok := s.afters[name]
	if !ok {
		return nil, fmt.Errorf("unknown after-func %s", name)
	}
	return a, nil
}

// waitFor reports whether ch is closed within d. It looks before it waits,
// so a closed channel yields true even for d <= 0; a nil channel never closes.
func waitFor(ch <-chan struct{}, d time.Duration) bool {
	select {
	case <-ch:
		return true
	default:
	}
	if d <= 0 {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	}
}
