package main

import (
	"context"
	"strconv"
	"time"
)

func (s *scenario) err(a []string) (string, error) {
	n, err := s.ctx(a[0])
	if err != nil {
		return "", err
	}
	return errName(n.ctx.Err()), nil
}

func (s *scenario) cause(a []string) (string, error) {
	n, err := s.ctx(a[0])
	if err != nil {
		return "", err
	}
	return errName(context.Cause(n.ctx)), nil
}

// errName compares by identity: Err and Cause return the sentinels themselves.
func errName(err error) string {
	switch err {
	case nil:
		return "nil"
	case context.Canceled:
		return "canceled"
	case context.DeadlineExceeded:
		return "deadline_exceeded"
	}
	return "msg:" + err.Error()
}

func (s *scenario) done(a []string) (string, error) {
	n, err := s.ctx(a[0])
	if err != nil {
		return "", err
	}
	return strconv.FormatBool(waitFor(n.ctx.Done(), 0)), nil
}

func (s *scenario) deadline(a []string) (string, error) {
	n, err := s.ctx(a[0])
	if err != nil {
		return "", err
	}
	if _, ok := n.ctx.Deadline(); ok {
		return "set", nil
	}
	return "none", nil
}

func (s *scenario) deadlineCmp(a []string) (string, error) {
	n, err := s.ctx(a[0])
	if err != nil {
		return "", err
	}
	other, err := s.ctx(a[1])
	if err != nil {
		return "", err
	}
	d1, ok1 := n.ctx.Deadline()
	d2, ok2 := other.ctx.Deadline()
	switch {
	case !ok1 || !ok2:
		return "none", nil
	case d1.Before(d2):
		return "before", nil
	case d1.Equal(d2):
		return "equal", nil
	}
	return "after", nil
}

func (s *scenario) deadlineWithin(a []string) (string, error) {
	n, err := s.ctx(a[0])
	if err != nil {
		return "", err
	}
	d, err := parseDuration(a[1])
	if err != nil {
		return "", err
	}
	dl, ok := n.ctx.Deadline()
	return strconv.FormatBool(ok && !dl.After(time.Now().Add(d))), nil
}

func (s *scenario) value(a []string) (string, error) {
	n, err := s.ctx(a[0])
	if err != nil {
		return "", err
	}
	k, err := s.key(a[1])
	if err != nil {
		return "", err
	}
	if v, ok := n.ctx.Value(k).(string); ok {
		return v, nil
	}
	return "nil", nil
}

func (s *scenario) wait(a []string) (string, error) {
	n, err := s.ctx(a[0])
	if err != nil {
		return "", err
	}
	d, err := parseDuration(a[1])
	if err != nil {
		return "", err
	}
	return strconv.FormatBool(waitFor(n.ctx.Done(), d)), nil
}

func (s *scenario) stop(a []string) (string, error) {
	f, err := s.afterFunc(a[0])
	if err != nil {
		return "", err
	}
	return strconv.FormatBool(f.stop()), nil
}

func (s *scenario) ran(a []string) (string, error) {
	f, err := s.afterFunc(a[0])
	if err != nil {
		return "", err
	}
	d, err := parseDuration(a[1])
	if err != nil {
		return "", err
	}
	return strconv.FormatBool(waitFor(f.ran, d)), nil
}

func (s *scenario) runs(a []string) (string, error) {
	f, err := s.afterFunc(a[0])
	if err != nil {
		return "", err
	}
	return strconv.Itoa(int(f.runs.Load())), nil
}
