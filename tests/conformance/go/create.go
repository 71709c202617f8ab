package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

func (s *scenario) background(a []string) (string, error) {
	return "", s.define(a[0], &node{ctx: context.Background()})
}

func (s *scenario) todo(a []string) (string, error) {
	return "", s.define(a[0], &node{ctx: context.TODO()})
}

func (s *scenario) withCancel(a []string) (string, error) {
	p, err := s.ctx(a[1])
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithCancel(p.ctx)
	return "", s.define(a[0], &node{ctx: ctx, cancel: cancel})
}

func (s *scenario) withCancelCause(a []string) (string, error) {
	p, err := s.ctx(a[1])
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithCancelCause(p.ctx)
	return "", s.define(a[0], &node{ctx: ctx, cancel: func() { cancel(nil) }, cancelCause: cancel})
}

func (s *scenario) withTimeout(a []string) (string, error) {
	p, err := s.ctx(a[1])
	if err != nil {
		return "", err
	}
	d, err := parseDuration(a[2])
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeoutCause(p.ctx, d, optionalCause(a[3:]))
	return "", s.define(a[0], &node{ctx: ctx, cancel: cancel})
}

func (s *scenario) withDeadline(a []string) (string, error) {
	p, err := s.ctx(a[1])
	if err != nil {
		return "", err
	}
	off, err := parseDuration(a[2])
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithDeadlineCause(p.ctx, s.t0.Add(off), optionalCause(a[3:]))
	return "", s.define(a[0], &node{ctx: ctx, cancel: cancel})
}

// optionalCause maps an absent CAUSE token to nil, which is exactly what
// WithTimeout and WithDeadline pass to their *Cause variants.
func optionalCause(rest []string) error {
	if len(rest) == 0 {
		return nil
	}
	return errors.New(rest[0])
}

// A value spelled nil could not be told apart from a missing one in the output.
var errNilValue = errors.New("value nil is reserved")

func (s *scenario) withValue(a []string) (string, error) {
	p, err := s.ctx(a[1])
	if err != nil {
		return "", err
	}
	k, err := s.key(a[2])
	if err != nil {
		return "", err
	}
	if a[3] == "nil" {
		return "", errNilValue
	}
	return "", s.define(a[0], &node{ctx: context.WithValue(p.ctx, k, a[3])})
}

func (s *scenario) withoutCancel(a []string) (string, error) {
	p, err := s.ctx(a[1])
	if err != nil {
		return "", err
	}
	return "", s.define(a[0], &node{ctx: context.WithoutCancel(p.ctx)})
}

// chain builds N links below PARENT and names only the deepest.
func (s *scenario) chain(a []string) (string, error) {
	p, err := s.ctx(a[1])
	if err != nil {
		return "", err
	}
	n, err := strconv.Atoi(a[3])
	if err != nil || n < 1 {
		return "", fmt.Errorf("bad chain length %q", a[3])
	}
	valueLinks, keyName, val, err := parseChainKind(a[2], n)
	if err != nil {
		return "", err
	}
	var k *key
	if valueLinks > 0 {
		if k, err = s.key(keyName); err != nil {
			return "", err
		}
	}
	leaf := &node{ctx: p.ctx}
	for i := 0; i < n; i++ {
		if i < valueLinks {
			leaf = &node{ctx: context.WithValue(leaf.ctx, k, val)}
			continue
		}
		ctx, cancel := context.WithCancel(leaf.ctx)
		leaf = &node{ctx: ctx, cancel: cancel}
		if i < n-1 {
			s.releases = append(s.releases, cancel)
		}
	}
	return "", s.define(a[0], leaf)
}

// parseChainKind says how many links, from the top, are WithValue(KEY, VALUE);
// the remaining links are WithCancel.
func parseChainKind(kind string, n int) (valueLinks int, keyName, val string, err error) {
	if kind == "cancel" {
		return 0, "", "", nil
	}
	parts := strings.SplitN(kind, ":", 3)
	if len(parts) == 3 && parts[2] == "nil" {
		return 0, "", "", errNilValue
	}
	if len(parts) == 3 && parts[2] != "" {
		switch parts[0] {
		case "value":
			return n, parts[1], parts[2], nil
		case "value_top":
			return 1, parts[1], parts[2], nil
		}
	}
	return 0, "", "", fmt.Errorf("bad chain kind %q", kind)
}
