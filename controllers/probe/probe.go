package probe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"time"

	v1 "reconciler.dev/reconciler/api/v1"
)

// tryTimeout bounds one try, so a probe that hangs cannot eat the whole
// timeout in one go.
const tryTimeout = 5 * time.Second

// Describe names a probe for messages: "tcp 127.0.0.1:1883".
func Describe(p *v1.Probe) string {
	switch {
	case p.TCP != "":
		return "tcp " + p.TCP
	case p.HTTP != "":
		return "http " + p.HTTP
	case len(p.Exec) > 0:
		return "exec " + strings.Join(p.Exec, " ")
	}
	return "probe"
}

// Once runs a probe a single time. The error carries what the check said
// (the exec output, the HTTP status, the dial error).
func Once(ctx context.Context, p *v1.Probe) error {
	ctx, cancel := context.WithTimeout(ctx, tryTimeout)
	defer cancel()
	switch {
	case p.TCP != "":
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", p.TCP)
		if err != nil {
			return err
		}
		return c.Close()
	case p.HTTP != "":
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.HTTP, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode >= 400 {
			return fmt.Errorf("HTTP %s", resp.Status)
		}
		return nil
	case len(p.Exec) > 0:
		var out bytes.Buffer
		cmd := exec.CommandContext(ctx, p.Exec[0], p.Exec[1:]...)
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.WaitDelay = time.Second
		if err := cmd.Run(); err != nil {
			msg := strings.TrimSpace(out.String())
			if len(msg) > 500 {
				msg = "..." + msg[len(msg)-500:]
			}
			if msg != "" {
				return fmt.Errorf("%w: %s", err, msg)
			}
			return err
		}
		return nil
	}
	return errors.New("probe declares no check")
}

// Wait retries a probe every Interval until it passes or Timeout ends, and
// returns the last failure.
func Wait(ctx context.Context, p *v1.Probe) error {
	timeout, interval := v1.DefaultProbeTimeout, v1.DefaultProbeInterval
	if p.Timeout != nil {
		timeout = p.Timeout.Duration
	}
	if p.Interval != nil && p.Interval.Duration > 0 {
		interval = p.Interval.Duration
	}
	deadline := time.Now().Add(timeout)
	tries := 0
	for {
		tries++
		err := Once(ctx, p)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w (last try: %v)", Describe(p), ctx.Err(), err)
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("%s did not pass within %s (%d tries; last: %v)", Describe(p), timeout, tries, err)
		}
		// The last try falls on the deadline, so "within 60s" means it.
		select {
		case <-time.After(min(interval, left)):
		case <-ctx.Done():
		}
	}
}
