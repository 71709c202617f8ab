package main

import (
	"context"
	"errors"
	"fmt"
)

func (s *scenario) cancel(a []string) (string, error) {
	n, err := s.ctx(a[0])
	if err != nil {
		return "", err
	}
	if n.cancel == nil {
		return "", fmt.Errorf("context %s has no cancel function", a[0])
	}
	n.cancel()
	return "", nil
}

func (s *scenario) cancelCause(a []string) (string, error) {
	n, err := s.ctx(a[0])
	if err != nil {
		return "", err
	}
	if n.cancelCause == nil {
		return "", fmt.Errorf("context %s has no cancel-cause function", a[0])
	}
	n.cancelCause(errors.New(a[1]))
	return "", nil
}

func (s *scenario) registerAfterFunc(a []string) (string, error) {
	if !identRE.MatchString(a[0]) {
		return "", fmt.Errorf("bad name %q", a[0])
	}
	if _, dup := s.afters[a[0]]; dup {
		return "", fmt.Errorf("after-func %s already exists", a[0])
	}
	n, err := s.ctx(a[1])
	if err != nil {
		return "", err
	}
	f := &afterFunc{ran: make(chan struct{})}
	f.stop = context.AfterFunc(n.ctx, func() {
		if f.runs.Add(1) == 1 {
			close(f.ran)
		}
	})
	s.afters[a[0]] = f
	return "", nil
}
